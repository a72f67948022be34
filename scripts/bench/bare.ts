// The bare Bun forwarder, the floor for one event loop: accept, connect to one fixed port, pipe both
// ways with backpressure and half-close, nothing else (no prelude, no routing, no supervisor, no logging, no metrics).
// `bun bare.ts TARGET_PORT WORKERS` prints the port it listens on (127.0.0.1, chosen by the kernel); WORKERS > 1 adds
// worker threads, each with its own SO_REUSEPORT listener on that port, the main thread being the first.
import type { Socket, SocketHandler } from "bun";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

/** One direction's state on one socket: the bytes it has not taken yet, and whether its peer sent FIN. */
interface End {
  socket: Socket<End> | null;
  peer: End;
  pending: Uint8Array | null;
  readEnded: boolean;
  closed: boolean;
}

function pair(): { client: End; backend: End } {
  const client = { socket: null, pending: null, readEnded: false, closed: false } as unknown as End;
  const backend = { socket: null, peer: client, pending: null, readEnded: false, closed: false } as End;
  client.peer = backend;
  return { client, backend };
}

/** Writes to `to` what its socket takes; keeps the rest (Bun drops it otherwise) and pauses the source. */
function send(to: End, bytes: Uint8Array): void {
  if (to.closed || to.socket === null) return;
  if (to.pending !== null) {
    const joined = new Uint8Array(to.pending.length + bytes.length);
    joined.set(to.pending);
    joined.set(bytes, to.pending.length);
    to.pending = joined;
    return;
  }
  const taken = to.socket.write(bytes);
  if (taken < 0) return closeBoth(to);
  if (taken < bytes.length) {
    to.pending = bytes.subarray(taken);
    to.peer.socket?.pause();
  }
}

function drain(end: End): void {
  const bytes = end.pending;
  if (bytes === null || end.socket === null) return;
  end.pending = null;
  send(end, bytes);
  if (end.pending !== null) return;
  if (end.peer.closed) {
    end.closed = true;
    end.socket.end();
  } else if (end.peer.readEnded) end.socket.shutdown();
  else end.peer.socket?.resume();
}

function closeBoth(end: End): void {
  for (const side of [end, end.peer]) {
    if (side.closed) continue;
    side.closed = true;
    side.socket?.end();
  }
}

const handlers = (isClient: boolean): SocketHandler<End> => ({
  binaryType: "uint8array",
  data: (socket, chunk) => send(socket.data.peer, chunk),
  drain: (socket) => drain(socket.data),
  end(socket) {
    const end = socket.data;
    end.readEnded = true;
    if (end.peer.pending === null) end.peer.socket?.shutdown();
    if (end.peer.readEnded && end.pending === null && end.peer.pending === null) closeBoth(end);
  },
  close(socket) {
    const end = socket.data;
    end.closed = true;
    if (end.peer.pending === null) closeBoth(end.peer);
  },
  error: () => undefined,
  ...(isClient ? {} : {
    open(socket: Socket<End>) {
      socket.data.socket = socket;
      socket.data.peer.socket?.resume();
    },
    connectError: (socket: Socket<End>) => closeBoth(socket.data),
  }),
});

const backendHandlers = handlers(false);

function listen(port: number, target: number, shared: boolean): number {
  const clientHandlers = handlers(true);
  return Bun.listen<End>({
    hostname: "127.0.0.1",
    port,
    allowHalfOpen: true,
    ...(shared ? { reusePort: true } : {}),
    data: undefined as unknown as End,
    socket: {
      ...clientHandlers,
      open(socket) {
        const { client, backend } = pair();
        client.socket = socket;
        socket.data = client;
        // Bytes can arrive before the backend is open: hold them in the kernel until it is.
        socket.pause();
        Bun.connect<End>({ hostname: "127.0.0.1", port: target, allowHalfOpen: true, data: backend, socket: backendHandlers }).catch(
          () => closeBoth(client),
        );
      },
    },
  }).port;
}

if (isMainThread && import.meta.main) {
  const target = Number(process.argv[2]);
  const workers = Number(process.argv[3] ?? 1);
  const port = listen(0, target, workers > 1);
  const ready: Promise<void>[] = [];
  for (let i = 1; i < workers; i++) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { port, target } });
    ready.push(new Promise((resolve) => worker.once("message", () => resolve())));
  }
  await Promise.all(ready);
  process.stdout.write(`${port}\n`);
  process.on("SIGTERM", () => process.exit(0));
} else if (!isMainThread) {
  const { port, target } = workerData as { port: number; target: number };
  listen(port, target, true);
  parentPort?.postMessage("listening");
}

// The one backend process of a bench run: echo, sink and slow-sink servers on whatever ports it is told to listen on,
// so every route (direct, HAProxy, the bare forwarder, our proxy at each worker count) ends in the same process.
// Run as `bun backend.ts`; prints its control port; `GET /listen?port=P&mode=M` binds (port 0 = any) and answers
// `{port, boundAt}` (and writes boundAt to the file `bound=` names), `GET /close?port=P` unbinds. Our proxy's tunnels reach it through tunnel.ts.
import { writeFileSync } from "node:fs";
import type { SocketHandler, TCPSocketListener } from "bun";

export type Mode = "echo" | "sink" | "slow";
/** The slow sink's reading rate: a backend far slower than the client, for the memory-growth check. */
export const SLOW_BYTES_PER_SECOND = 4_000_000;

interface State {
  pending: Uint8Array | null;
  count: number;
  ended: boolean;
}

/** Echoes with backpressure: one pending chunk at most, the client paused until it is written (DESIGN §6). */
const echo: SocketHandler<State> = {
  binaryType: "uint8array",
  open: (socket) => void (socket.data = { pending: null, count: 0, ended: false }),
  data(socket, chunk) {
    const taken = socket.write(chunk);
    if (taken >= 0 && taken < chunk.length) {
      socket.data.pending = chunk.subarray(taken);
      socket.pause();
    }
  },
  drain(socket) {
    const pending = socket.data.pending;
    if (pending === null) return;
    const taken = socket.write(pending);
    if (taken < 0) return;
    if (taken < pending.length) return void (socket.data.pending = pending.subarray(taken));
    socket.data.pending = null;
    if (socket.data.ended) socket.end();
    else socket.resume();
  },
  end(socket) {
    socket.data.ended = true;
    if (socket.data.pending === null) socket.end();
  },
  error: () => undefined,
};

/** Counts what arrives and answers the count at the client's FIN. */
const sink: SocketHandler<State> = {
  binaryType: "uint8array",
  open: (socket) => void (socket.data = { pending: null, count: 0, ended: false }),
  data: (socket, chunk) => void (socket.data.count += chunk.length),
  end(socket) {
    socket.write(`${socket.data.count}\n`);
    socket.end();
  },
  error: () => undefined,
};

/** A sink that reads at SLOW_BYTES_PER_SECOND: paused after each chunk for as long as the chunk takes at that rate. */
const slow: SocketHandler<State> = {
  ...sink,
  data(socket, chunk) {
    socket.data.count += chunk.length;
    socket.pause();
    setTimeout(() => socket.resume(), (chunk.length / SLOW_BYTES_PER_SECOND) * 1000);
  },
};

const HANDLERS: Record<Mode, SocketHandler<State>> = { echo, sink, slow };

if (import.meta.main) {
  const listeners = new Map<number, TCPSocketListener<State>>();
  const listen = (port: number, mode: Mode, boundFile: string | null) => {
    const listener = Bun.listen<State>({ hostname: "127.0.0.1", port, allowHalfOpen: true, socket: HANDLERS[mode] });
    listeners.set(listener.port, listener);
    const boundAt = Date.now();
    // Written before this turn ends, so before the first connection to the port is served.
    if (boundFile !== null) writeFileSync(boundFile, `${boundAt}\n`);
    return { port: listener.port, boundAt };
  };
  const control = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const url = new URL(request.url);
      const port = Number(url.searchParams.get("port") ?? 0);
      if (url.pathname === "/listen") {
        const mode = (url.searchParams.get("mode") ?? "echo") as Mode;
        if (!(mode in HANDLERS)) return new Response("bad mode", { status: 400 });
        try {
          return Response.json(listen(port, mode, url.searchParams.get("bound")));
        } catch (error) {
          return new Response((error as Error).message, { status: 409 });
        }
      }
      if (url.pathname === "/close") {
        listeners.get(port)?.stop(true);
        listeners.delete(port);
        return new Response("closed");
      }
      return new Response("not found", { status: 404 });
    },
  });
  process.stdout.write(`${control.port}\n`);
  process.on("SIGTERM", () => process.exit(0));
}

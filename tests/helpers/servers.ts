// Backends for end-to-end tests: a TLS echo server with the test certificate and a TCP server that records bytes.
import { CryptoHasher } from "bun";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { testCerts } from "./certs.ts";

export interface Backend {
  readonly port: number;
  close(): void;
}

/** TLS server that echoes every byte; `alpn` lists the protocols it offers. */
export function tlsEchoServer(alpn?: string[]): Promise<Backend & { server: TlsServer }> {
  const certs = testCerts();
  const server = createTlsServer({ key: certs.key, cert: certs.cert, ...(alpn ? { ALPNProtocols: alpn } : {}) }, (socket) => {
    socket.on("error", () => socket.destroy());
    socket.pipe(socket);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as { port: number };
      resolve({ server, port: address.port, close: () => server.close() });
    }),
  );
}

export interface RecordedConnection {
  bytes: Uint8Array[];
  readonly ended: Promise<void>;
  total(): Uint8Array;
  /** Resolves with everything received once at least `length` bytes are in. */
  atLeast(length: number): Promise<Uint8Array>;
}

/** TCP server that records what each connection sends and answers `reply` (if any) to the first chunk. */
export function recordingServer(reply?: Uint8Array): Backend & { connections: RecordedConnection[]; next(): Promise<RecordedConnection> } {
  const connections: RecordedConnection[] = [];
  const waiting: ((c: RecordedConnection) => void)[] = [];
  const listener = Bun.listen<{ record: RecordedConnection; end: () => void; check: () => void }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      open(socket) {
        let end!: () => void;
        const ended = new Promise<void>((resolve) => (end = resolve));
        const wanted: { length: number; resolve: (bytes: Uint8Array) => void }[] = [];
        const record: RecordedConnection = {
          bytes: [],
          ended,
          total: () => Buffer.concat(record.bytes),
          atLeast: (length) => new Promise((resolve) => {
            wanted.push({ length, resolve });
            check();
          }),
        };
        const check = () => {
          const total = record.total();
          for (const want of [...wanted]) {
            if (total.length >= want.length) {
              wanted.splice(wanted.indexOf(want), 1);
              want.resolve(total);
            }
          }
        };
        socket.data = { record, end, check };
        connections.push(record);
        waiting.shift()?.(record);
      },
      data(socket, chunk) {
        if (socket.data.record.bytes.length === 0 && reply) socket.write(reply);
        socket.data.record.bytes.push(chunk);
        socket.data.check();
      },
      close(socket) {
        socket.data.end();
      },
    },
  });
  return {
    port: listener.port,
    connections,
    next: () => new Promise((resolve) => waiting.push(resolve)),
    close: () => listener.stop(true),
  };
}

/** A backend that reads slowly (one chunk per `delayMs`), hashes what it got and, at the client's FIN, answers the hex hash. */
export function slowSinkServer(delayMs: number): Backend {
  const listener = Bun.listen<{ hasher: CryptoHasher }>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      binaryType: "uint8array",
      open(socket) {
        socket.data = { hasher: new CryptoHasher("sha256") };
      },
      data(socket, chunk) {
        socket.data.hasher.update(chunk);
        socket.pause();
        setTimeout(() => socket.resume(), delayMs);
      },
      end(socket) {
        socket.write(socket.data.hasher.digest("hex"));
        socket.end();
      },
    },
  });
  return { port: listener.port, close: () => listener.stop(true) };
}

// Backends for end-to-end tests: a TLS echo server with the test certificate and a TCP server that records bytes.
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
}

/** TCP server that records what each connection sends and answers `reply` (if any) to the first chunk. */
export function recordingServer(reply?: Uint8Array): Backend & { connections: RecordedConnection[]; next(): Promise<RecordedConnection> } {
  const connections: RecordedConnection[] = [];
  const waiting: ((c: RecordedConnection) => void)[] = [];
  const listener = Bun.listen<{ record: RecordedConnection; end: () => void }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      open(socket) {
        let end!: () => void;
        const ended = new Promise<void>((resolve) => (end = resolve));
        const record: RecordedConnection = {
          bytes: [],
          ended,
          total: () => Buffer.concat(record.bytes),
        };
        socket.data = { record, end };
        connections.push(record);
        waiting.shift()?.(record);
      },
      data(socket, chunk) {
        if (socket.data.record.bytes.length === 0 && reply) socket.write(reply);
        socket.data.record.bytes.push(chunk);
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

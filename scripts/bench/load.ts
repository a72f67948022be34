// The benchmark's load generator: Bun sockets in this process, honouring write() and drain like the proxy does.
import type { Socket, SocketHandler } from "bun";

/** Bun.connect to 127.0.0.1:`port`; a failure to connect goes to `reject`. */
function dial(port: number, socket: SocketHandler<undefined>, reject: (error: Error) => void, allowHalfOpen = false): void {
  Bun.connect({ hostname: "127.0.0.1", port, allowHalfOpen, socket: { ...socket, connectError: (_, error) => reject(error) } }).catch(
    reject,
  );
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Connect, send the hello, resolve at the first byte back: milliseconds, or throws. */
export function connectToFirstByte(port: number, hello: Uint8Array): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) =>
    dial(
      port,
      {
        open: (socket) => void socket.write(hello),
        data(socket) {
          resolve(performance.now() - started);
          socket.end();
        },
        close: () => reject(new Error("closed before the first byte")),
      },
      reject,
    ),
  );
}

/** Sends hello + `total` bytes to a sink that answers its count at FIN; MB/s of payload, count verified. */
export function bulk(port: number, hello: Uint8Array, total: number): Promise<number> {
  const block = new Uint8Array(256 * 1024).map((_, i) => i * 31);
  let sent = 0;
  let pending: Uint8Array | null = null;
  let reply = "";
  const started = performance.now();
  const pump = (socket: Socket<undefined>) => {
    for (;;) {
      if (pending === null) {
        if (sent >= total) return void socket.shutdown();
        pending = block.subarray(0, Math.min(block.length, total - sent));
        sent += pending.length;
      }
      const written = socket.write(pending);
      if (written < pending.length) {
        pending = written > 0 ? pending.subarray(written) : pending;
        return;
      }
      pending = null;
    }
  };
  return new Promise((resolve, reject) =>
    dial(
      port,
      {
        open(socket) {
          socket.write(hello);
          pump(socket);
        },
        drain: pump,
        data: (_, chunk) => void (reply += chunk.toString()),
        close() {
          const counted = Number(reply.trim());
          if (counted !== total + hello.length) return reject(new Error(`sink counted ${counted}, sent ${total + hello.length}`));
          resolve(total / 1e6 / ((performance.now() - started) / 1000));
        },
      },
      reject,
      true,
    ),
  );
}

/** Round trips of `size` bytes on one connection (after the hello's echo); sorted milliseconds. */
export function roundTrips(port: number, hello: Uint8Array, count: number, size = 64): Promise<number[]> {
  const message = new Uint8Array(size).fill(0x61);
  const times: number[] = [];
  let expected = hello.length;
  let received = 0;
  let started = 0;
  return new Promise((resolve, reject) =>
    dial(
      port,
      {
        open: (socket) => void socket.write(hello),
        data(socket, chunk) {
          received += chunk.length;
          if (received < expected) return;
          if (started > 0) times.push(performance.now() - started);
          if (times.length === count) {
            socket.end();
            return resolve(times.sort((a, b) => a - b));
          }
          received = 0;
          expected = size;
          started = performance.now();
          socket.write(message);
        },
      },
      reject,
    ),
  );
}

/** Connections per second: `concurrency` loops of connect, hello, first byte, close, for `durationMs`. */
export async function connectionsPerSecond(port: number, hello: Uint8Array, concurrency: number, durationMs: number): Promise<number> {
  const deadline = performance.now() + durationMs;
  let done = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      await connectToFirstByte(port, hello);
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  return done / ((performance.now() - started) / 1000);
}

/** Opens `count` connections that each got their hello echoed, and keeps them open. */
export async function openIdle(port: number, hello: Uint8Array, count: number, batch = 200): Promise<Socket<undefined>[]> {
  const sockets: Socket<undefined>[] = [];
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, () =>
        new Promise<Socket<undefined>>((resolve, reject) =>
          dial(
            port,
            {
              open: (socket) => void socket.write(hello),
              data: (socket) => resolve(socket),
            },
            reject,
          ),
        ),
      ),
    );
    sockets.push(...opened);
  }
  return sockets;
}

/** Sends the hello and a FIN, resolves when the far end closes: enough to start a tunnel and see it serve. */
export function touch(port: number, hello: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) =>
    dial(
      port,
      {
        open(socket) {
          socket.write(hello);
          socket.shutdown();
        },
        data() {},
        close: () => resolve(),
      },
      reject,
      true,
    ),
  );
}

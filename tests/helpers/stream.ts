// Large transfers for end-to-end tests: deterministic blocks written with backpressure, hashed on both ends.
import { CryptoHasher, type Socket } from "bun";

export const BLOCK = 64 * 1024;

/** Block `index` of a deterministic stream: a fixed pseudo-random block stamped with its index. */
export function makeBlockSource(): (index: number) => Uint8Array {
  const base = new Uint8Array(BLOCK);
  let x = 0x9e3779b9;
  for (let i = 0; i < BLOCK; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    base[i] = x & 0xff;
  }
  return (index) => {
    const block = base.slice();
    new DataView(block.buffer).setUint32(0, index);
    return block;
  };
}

export interface TransferResult {
  readonly sent: number;
  readonly received: number;
  readonly sentHash: string;
  readonly receivedHash: string;
  /** The last bytes received (up to 256), for small replies such as a sink's hash. */
  readonly tail: string;
}

/**
 * Connects, writes `prelude`, then `total` bytes of the block stream (honouring write()'s return and drain), shuts down
 * its write side, and hashes everything that comes back until the peer closes. With `echo`, the first `prelude.length`
 * bytes back are the echoed prelude and are skipped, so hashes compare payload with payload.
 */
export function transfer(
  port: number,
  prelude: Uint8Array,
  total: number,
  options: { readDelayMs?: number; echo?: boolean } = {},
): Promise<TransferResult> {
  const block = makeBlockSource();
  const sentHasher = new CryptoHasher("sha256");
  const receivedHasher = new CryptoHasher("sha256");
  let sent = 0;
  let received = 0;
  let skip = options.echo ? prelude.length : 0;
  let index = 0;
  let pending: Uint8Array | null = null;
  let tail = "";
  return new Promise((resolve, reject) => {
    const pump = (socket: Socket<undefined>) => {
      for (;;) {
        if (pending === null) {
          if (sent >= total) {
            socket.shutdown();
            return;
          }
          const next = block(index++).subarray(0, Math.min(BLOCK, total - sent));
          sentHasher.update(next);
          sent += next.length;
          pending = next;
        }
        const written = socket.write(pending);
        if (written < 0) return reject(new Error("write failed"));
        if (written < pending.length) {
          pending = pending.subarray(written);
          return;
        }
        pending = null;
      }
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      allowHalfOpen: true,
      socket: {
        binaryType: "uint8array",
        open(socket) {
          socket.write(prelude);
          pump(socket);
        },
        drain: pump,
        data(socket, chunk) {
          let payload = chunk;
          if (skip > 0) {
            const cut = Math.min(skip, payload.length);
            skip -= cut;
            payload = payload.subarray(cut);
          }
          received += payload.length;
          receivedHasher.update(payload);
          tail = (tail + new TextDecoder().decode(payload.subarray(Math.max(0, payload.length - 256)))).slice(-256);
          if (options.readDelayMs) {
            socket.pause();
            setTimeout(() => socket.resume(), options.readDelayMs);
          }
        },
        close() {
          resolve({ sent, received, sentHash: sentHasher.digest("hex"), receivedHash: receivedHasher.digest("hex"), tail });
        },
        connectError: (_, error) => reject(error),
      },
    }).catch(reject);
  });
}

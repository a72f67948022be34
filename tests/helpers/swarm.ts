// Many raw connections at once: each sends a ClientHello for its hostname plus a payload and checks the exact echo.
// The client side stays cheap (payload built before the connect, checked with native compares), so a test running
// hundreds of them measures the proxy rather than its own event loop.
import type { Socket } from "bun";
import { clientHello, records } from "./builders.ts";

export interface EchoResult {
  readonly ok: boolean;
  readonly reason?: string;
  /** From the connect call to the socket's open callback: how late this client's own event loop was. */
  readonly openLagMs: number;
}

/** `bytes` of deterministic noise from `seed` (xorshift32, a word at a time). */
export function noise(bytes: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(bytes / 4));
  let x = (seed | 0) || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, bytes);
}

/** The bytes one echo connection sends: its ClientHello, then the payload. */
export function echoBytes(hostname: string, payloadBytes: number, seed: number): Uint8Array {
  const hello = records(clientHello({ names: [hostname] }));
  const out = new Uint8Array(hello.length + payloadBytes);
  out.set(hello);
  out.set(noise(payloadBytes, seed), hello.length);
  return out;
}

function same(chunk: Uint8Array, expected: Uint8Array, at: number): boolean {
  if (at + chunk.length > expected.length) return false;
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).equals(Buffer.from(expected.buffer, expected.byteOffset + at, chunk.length));
}

/** One connection: hello + payload out, the same bytes expected back (the fake echoes), then close. */
export function echoConnection(port: number, hostname: string, payloadBytes: number, seed: number): Promise<EchoResult> {
  return echoSend(port, echoBytes(hostname, payloadBytes, seed));
}

/** One connection sending prepared `out` (see echoBytes) and checking its echo. */
export function echoSend(port: number, out: Uint8Array): Promise<EchoResult> {
  const connectAt = performance.now();
  let openLagMs = -1;
  return new Promise((resolve) => {
    let offset = 0;
    let received = 0;
    let mismatch: string | undefined;
    const pump = (socket: Socket<undefined>) => {
      while (offset < out.length) {
        const written = socket.write(out.subarray(offset));
        if (written <= 0) return;
        offset += written;
      }
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        open(socket) {
          openLagMs = performance.now() - connectAt;
          pump(socket);
        },
        drain: pump,
        data(socket, chunk) {
          if (mismatch === undefined && !same(chunk, out, received)) mismatch = `bytes ${received}-${received + chunk.length} differ`;
          received += chunk.length;
          if (mismatch !== undefined || received >= out.length) socket.end();
        },
        close() {
          const ok = mismatch === undefined && received === out.length;
          resolve(ok ? { ok, openLagMs } : { ok, openLagMs, reason: mismatch ?? `received ${received} of ${out.length}` });
        },
        connectError: (_, error) => resolve({ ok: false, openLagMs, reason: error.message }),
      },
    }).catch((error: Error) => resolve({ ok: false, openLagMs, reason: error.message }));
  });
}

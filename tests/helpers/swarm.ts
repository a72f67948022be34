// Many raw connections at once: each sends a ClientHello for its hostname plus a payload and checks the exact echo.
import type { Socket } from "bun";
import { clientHello, records, rng } from "./builders.ts";

export interface EchoResult {
  readonly ok: boolean;
  readonly reason?: string;
}

/** One connection: hello + payload out, the same bytes expected back (the fake echoes), then close. */
export function echoConnection(port: number, hostname: string, payloadBytes: number, seed: number): Promise<EchoResult> {
  const random = rng(seed);
  const hello = records(clientHello({ names: [hostname] }));
  const payload = new Uint8Array(payloadBytes);
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(random() * 256);
  const out = new Uint8Array(hello.length + payload.length);
  out.set(hello);
  out.set(payload, hello.length);
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
        open: pump,
        drain: pump,
        data(socket, chunk) {
          for (let i = 0; i < chunk.length && mismatch === undefined; i++) {
            if (chunk[i] !== out[received + i]) mismatch = `byte ${received + i} differs`;
          }
          received += chunk.length;
          if (mismatch !== undefined || received >= out.length) socket.end();
        },
        close() {
          const ok = mismatch === undefined && received === out.length;
          resolve(ok ? { ok } : { ok, reason: mismatch ?? `received ${received} of ${out.length}` });
        },
        connectError: (_, error) => resolve({ ok: false, reason: error.message }),
      },
    }).catch((error: Error) => resolve({ ok: false, reason: error.message }));
  });
}

// Seeded hostile preludes for fuzzing a running proxy: random bytes and mutations of every valid form, SNI storms
// (a new allowed hostname each), and cancel floods (bare, or behind PROXY headers naming many clients).
import { concat, fromAscii } from "../../src/protocol/bytes.ts";
import { SSL_REQUEST } from "../../src/protocol/postgres.ts";
import { clientHello, fixture, ipv4Addresses, pgRequest, proxyV2, records, rng, startupMessage } from "./builders.ts";
import { cancelRequest } from "./wire.ts";

export interface FuzzCase {
  readonly bytes: Uint8Array;
  /** Write it in chunks of this size (1 = a byte at a time). */
  readonly chunk: number;
}

export function fuzzCases(seed: number, count: number, sniSuffix: string): FuzzCase[] {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const hello = (name: string) => records(clientHello({ names: [name], alpn: ["postgresql"] }), pick([16384, 100, 7]));
  const seeds = [
    hello(`db.${sniSuffix}`),
    concat([SSL_REQUEST, hello(`pg.${sniSuffix}`)]),
    concat([proxyV2({ addresses: ipv4Addresses([1, 2, 3, 4], [5, 6, 7, 8], 1, 2) }), hello(`v2.${sniSuffix}`)]),
    concat([fromAscii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), hello(`v1.${sniSuffix}`)]),
    concat([pgRequest(80877104), SSL_REQUEST, hello(`gss.${sniSuffix}`)]),
    startupMessage({ user: "x" }),
    fixture("curl"),
    fixture("psql"),
    hello("evil.example.com"),
  ];
  const cases: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    let bytes: Uint8Array;
    const kind = random();
    if (kind < 0.1) {
      bytes = hello(`storm-${i}.${sniSuffix}`);
    } else if (kind < 0.2) {
      const source = [198, 51, 100, Math.floor(random() * 256)];
      const header = random() < 0.5 ? new Uint8Array() : fromAscii(`PROXY TCP4 ${source.join(".")} 10.0.0.1 4000 19000\r\n`);
      bytes = concat([header, cancelRequest(Math.floor(random() * 2 ** 31), Math.floor(random() * 2 ** 31))]);
    } else if (kind < 0.3) {
      bytes = new Uint8Array(1 + Math.floor(random() * 600)).map(() => Math.floor(random() * 256));
    } else {
      bytes = pick(seeds).slice();
      const edits = Math.floor(random() * 6);
      for (let e = 0; e < edits; e++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      if (random() < 0.2) bytes = bytes.subarray(0, Math.floor(random() * bytes.length));
    }
    cases.push({ bytes, chunk: pick([1 << 20, 1 << 20, 1 << 20, 64, 3, 1]) });
  }
  return cases;
}

/**
 * Throws every case at the proxy (`parallel` at a time). Half end their side right after writing; the others wait
 * for the proxy's first answer (or its hello timeout) before ending, so routed cases finish too.
 */
export async function runFuzz(port: number, cases: readonly FuzzCase[], parallel: number): Promise<{ closed: number; failedToConnect: number }> {
  let closed = 0;
  let failedToConnect = 0;
  let next = 0;
  const one = (fuzz: FuzzCase, index: number) =>
    new Promise<void>((resolve) => {
      Bun.connect({
        hostname: "127.0.0.1",
        port,
        allowHalfOpen: true,
        socket: {
          async open(socket) {
            for (let offset = 0; offset < fuzz.bytes.length; offset += fuzz.chunk) {
              if (socket.write(fuzz.bytes.subarray(offset, offset + fuzz.chunk)) < 0) return;
              if (fuzz.chunk < 1024) await new Promise((r) => setImmediate(r));
            }
            if (index % 2 === 0) socket.shutdown();
          },
          data(socket) {
            socket.shutdown();
          },
          close() {
            closed++;
            resolve();
          },
          connectError() {
            failedToConnect++;
            resolve();
          },
        },
      }).catch(() => {
        failedToConnect++;
        resolve();
      });
    });
  const worker = async () => {
    while (next < cases.length) {
      const index = next++;
      await one(cases[index] as FuzzCase, index);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { closed, failedToConnect };
}

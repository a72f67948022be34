// The benchmark's load generator: each call runs one subcommand of the Go peers (go/load.go) against 127.0.0.1:port,
// opening every connection with `hello`, and returns its figure with the CPU time the load itself took.
import type { Subprocess } from "bun";
import { clientHello, records } from "../../tests/helpers/builders.ts";
import { hex, peersBinary, runPeer, type PeerResult } from "./peers.ts";

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** What every connection of the bench opens with: a ClientHello for `sni`, offering ALPN postgresql. */
export const hello = (sni: string) => records(clientHello({ names: [sni], alpn: ["postgresql"] }));

const target = (port: number, hello: Uint8Array) => ["--port", port, "--hello", hex(hello)];

/** Sorted milliseconds, and what taking them cost the load generator. */
export type Samples = PeerResult & { samples: number[] };

/** `count` sequential connect + hello + first byte back. */
export function connectToFirstByte(port: number, hello: Uint8Array, count = 1): Promise<Samples> {
  return runPeer("connect", [...target(port, hello), "--count", count]);
}

/** Sends hello + `total` bytes to a sink that answers its count at FIN (checked): MB/s of payload. */
export function bulk(port: number, hello: Uint8Array, total: number): Promise<PeerResult & { mbps: number }> {
  return runPeer("bulk", [...target(port, hello), "--bytes", total]);
}

/** Round trips of `size` bytes on one connection (after the hello's echo). */
export function roundTrips(port: number, hello: Uint8Array, count: number, size = 64): Promise<Samples> {
  return runPeer("rtt", [...target(port, hello), "--count", count, "--size", size]);
}

/** Connections per second: `clients` loops of connect, hello, first byte, FIN, for `durationMs`. */
export function connectionsPerSecond(port: number, hello: Uint8Array, clients: number, durationMs: number): Promise<PeerResult & { cps: number; count: number; failed: number }> {
  return runPeer("cps", [...target(port, hello), "--clients", clients, "--ms", durationMs]);
}

/** Sends the hello and a FIN, resolves when the far end closes: enough to start a tunnel and see it serve. */
export async function touch(port: number, hello: Uint8Array): Promise<void> {
  await runPeer("touch", target(port, hello));
}

/** `count` connections that each got their hello echoed, held open until release() (which waits for their close). */
export interface IdleConnections {
  release(): Promise<void>;
}

export async function openIdle(port: number, hello: Uint8Array, count: number): Promise<IdleConnections> {
  const proc: Subprocess<"pipe", "pipe", "pipe"> = Bun.spawn([peersBinary(), "idle", ...target(port, hello).map(String), "--count", String(count)], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`ttpbench idle failed: ${(await new Response(proc.stderr).text()).trim()}`);
    text += new TextDecoder().decode(value);
  }
  return {
    async release() {
      proc.stdin.end();
      await proc.exited;
    },
  };
}

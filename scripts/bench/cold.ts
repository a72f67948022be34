// Cold starts: connect with the ClientHello of a hostname no tunnel serves yet and time the first echoed byte, minus
// the tunnel's own spawn-to-bind time (from the proxy's log line saying it started the tunnel to the bind time the
// stand-in's backend, or the watcher beside the real cloudflared, wrote to <stateDir>/<tunnel>.bound); p50. Through
// the real cloudflared a second connection to the same, now running, tunnel is timed too (the client opens a
// WebSocket to the edge for every connection), and the same is measured without a proxy: the real client started by
// hand and connected to as soon as it binds, which is what its first connection costs by itself.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectToFirstByte, hello, percentile } from "./load.ts";
import { hex, peersBinary, runPeer, type PeerResult } from "./peers.ts";
import { freePort, spawn, stopAndRemove } from "./processes.ts";
import type { RealCloudflared } from "./real.ts";
import type { TunnelProxy } from "./routes.ts";

/** How long a log line or bind time may take to appear after the first byte came back. */
const RECORD_WAIT_MS = 2000;

export interface ColdResult {
  /** p50 of the first byte's time beyond the tunnel's own spawn-to-bind, ms. */
  readonly cold: number;
  /** p50 of a second connection's connect to first byte through the same tunnel, ms. */
  readonly warm: number;
}

const p50 = (samples: number[]) => percentile(samples.sort((a, b) => a - b), 50);

async function waitForFile(file: string): Promise<boolean> {
  for (let waited = 0; !existsSync(file) && waited < RECORD_WAIT_MS; waited += 20) await Bun.sleep(20);
  return existsSync(file);
}

export async function coldStarts(proxy: TunnelProxy, port: number, snis: readonly string[], log: (text: string) => void): Promise<ColdResult> {
  const overheads: number[] = [];
  const warms: number[] = [];
  for (const sni of snis) {
    const tunnel = `cft-${sni}`;
    const [total] = (await connectToFirstByte(port, hello(sni))).samples;
    let startedAt = proxy.tunnelStartedAt(tunnel);
    for (let waited = 0; startedAt === null && waited < RECORD_WAIT_MS; waited += 20) {
      await Bun.sleep(20);
      startedAt = proxy.tunnelStartedAt(tunnel);
    }
    const boundFile = join(proxy.stateDir, `${tunnel}.bound`);
    if (total === undefined || startedAt === null || !(await waitForFile(boundFile))) {
      log(`cold start of ${tunnel}: ${startedAt === null ? "no log line saying the tunnel started" : "no bind time"}; sample left out`);
      continue;
    }
    overheads.push(total - (Number(readFileSync(boundFile, "utf8")) - startedAt));
    warms.push(...(await connectToFirstByte(port, hello(sni))).samples);
  }
  return { cold: p50(overheads), warm: p50(warms) };
}

/** The real client without a proxy: started by hand in the private namespace, connected to the moment it binds. */
export async function realWithoutProxy(real: RealCloudflared, snis: readonly string[], log: (text: string) => void): Promise<ColdResult> {
  const overheads: number[] = [];
  const warms: number[] = [];
  const stops: Promise<void>[] = [];
  for (const sni of snis) {
    const dir = mkdtempSync(join(tmpdir(), "ttp-bench-real-"));
    const port = freePort();
    const argv = [peersBinary(), "access", "tcp", "--hostname", `cft-${sni}`, "--url", `127.0.0.1:${port}`];
    const proc = spawn(real.wrap(argv), { env: { ...real.env, BENCH_STATE_DIR: dir } });
    try {
      const first = await runPeer<PeerResult & { firstByteAt: number }>("connect-when-bound", ["--port", port, "--hello", hex(hello(sni))]);
      const boundFile = join(dir, `cft-${sni}.bound`);
      if (!(await waitForFile(boundFile))) throw new Error("no bind time");
      overheads.push(first.firstByteAt - Number(readFileSync(boundFile, "utf8")));
      warms.push(...(await connectToFirstByte(port, hello(sni))).samples);
    } catch (error) {
      log(`the real cloudflared without a proxy, ${sni}: ${(error as Error).message}; sample left out`);
    }
    // It takes about 2.5 s to exit on SIGTERM: let the next sample start meanwhile.
    stops.push(stopAndRemove(proc, dir));
  }
  await Promise.all(stops);
  return { cold: p50(overheads), warm: p50(warms) };
}

// The soak run: seeded chaos clients against chaotic tunnels for a while, with or without a SIGTERM at a
// random moment, then the invariants: nothing open, every lease back, no child left, descriptors back to baseline,
// and an exit within --drain-timeout + 2 s.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLIENTS, KINDS, runClient, type ClientResult } from "./chaos.ts";
import { eventually, metric, openFds, processesMatching, scrape, tunnels } from "./admin.ts";
import { rng } from "./builders.ts";
import { portRange, startProxy } from "./proxy-process.ts";

export interface SoakOptions {
  readonly seconds: number;
  readonly seed: number;
  readonly workers: number;
  /** Send SIGTERM at a random moment of the run. */
  readonly sigterm: boolean;
  readonly concurrency?: number;
}

export interface SoakReport {
  readonly seed: number;
  readonly workers: number;
  readonly clients: number;
  readonly byKind: Record<string, number>;
  readonly violations: string[];
  readonly sigtermAfterMs: number | null;
  readonly exitCode: number | null;
  readonly exitMs: number | null;
  readonly ok: boolean;
}

const DRAIN_MS = 3000;

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const random = rng(options.seed);
  const marker = `soak${options.seed}x${process.pid}`;
  const hostnames = KINDS.flatMap((kind, i) => [`${kind}-${i}a.${marker}.test`, `${kind}-${i}b.${marker}.test`]);
  const proxy = await startProxy(
    ["--metrics-listen", "127.0.0.1:0", "--log-level", "info", "--hello-timeout", "2s", "--startup-timeout", "2s",
      "--idle-timeout", "300ms", "--restart-backoff", "200ms", "--max-restarts", "2", "--drain-timeout", `${DRAIN_MS}ms`,
      "--workers", String(options.workers), "--port-range", portRange(100)],
    { FAKE_CF_BY_NAME: "1", FAKE_CF_STATE_DIR: mkdtempSync(join(tmpdir(), "ttp-soak-")) },
  );
  const pid = proxy.proc.pid;
  const baselineFds = openFds(pid);
  const violations: string[] = [];
  const results: ClientResult[] = [];
  const endAt = performance.now() + options.seconds * 1000;
  const sigtermAfterMs = options.sigterm ? Math.floor(random() * options.seconds * 1000) : null;
  let exit: Promise<{ code: number; ms: number }> | null = null;
  const terminate = () => {
    const sent = performance.now();
    proxy.proc.kill("SIGTERM");
    exit = proxy.proc.exited.then((code) => ({ code, ms: performance.now() - sent }));
  };
  const timer = sigtermAfterMs === null ? null : setTimeout(terminate, sigtermAfterMs);
  let seq = 0;
  const loop = async () => {
    while (performance.now() < endAt) {
      const kind = CLIENTS[Math.floor(random() * CLIENTS.length)] as (typeof CLIENTS)[number];
      const hostname = hostnames[Math.floor(random() * hostnames.length)] as string;
      const strict = exit === null;
      const result = await runClient(proxy.port, kind, hostname, ++seq, random);
      results.push(result);
      const beforeSigterm = strict && exit === null;
      if (result.violation !== undefined && (beforeSigterm || result.violation.startsWith("connection still open"))) {
        violations.push(`${kind} → ${hostname}: ${result.violation}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 24 }, loop));
  if (timer !== null) clearTimeout(timer);
  if (exit === null) {
    await checkQuiet(proxy.adminPort as number, pid, baselineFds, violations);
    terminate();
  }
  const { code, ms } = await (exit as unknown as Promise<{ code: number; ms: number }>);
  if (code !== 0) violations.push(`exit status ${code}`);
  if (ms > DRAIN_MS + 2000) violations.push(`exit took ${Math.round(ms)} ms after SIGTERM (limit ${DRAIN_MS + 2000})`);
  const left = await eventually(() => processesMatching(marker), (pids) => pids.length === 0, 2000).catch(() => processesMatching(marker));
  if (left.length > 0) violations.push(`tunnel processes left after exit: ${left.join(", ")}`);
  const byKind: Record<string, number> = {};
  for (const result of results) byKind[result.kind] = (byKind[result.kind] ?? 0) + 1;
  return {
    seed: options.seed,
    workers: options.workers,
    clients: results.length,
    byKind,
    violations,
    sigtermAfterMs,
    exitCode: code,
    exitMs: Math.round(ms),
    ok: violations.length === 0,
  };
}

/** After the clients: no connection open, no lease held, tunnels stopped once idle, descriptors back to baseline. */
async function checkQuiet(adminPort: number, pid: number, baselineFds: number, violations: string[]): Promise<void> {
  const quiet = async () => {
    const active = metric(await scrape(adminPort), "tcp_tunnel_proxy_active_connections");
    const listed = await tunnels(adminPort);
    return { active, held: listed.reduce((n, t) => n + t.connections, 0), running: listed.filter((t) => t.pid !== null).length };
  };
  const state = await eventually(quiet, (s) => s.active === 0 && s.held === 0 && s.running === 0, 10_000).catch(() => quiet());
  if (state.active !== 0) violations.push(`${state.active} connections still open after the clients left`);
  if (state.held !== 0) violations.push(`${state.held} leases still held`);
  if (state.running !== 0) violations.push(`${state.running} tunnels still running after the idle timeout`);
  const fds = await eventually(() => openFds(pid), (n) => n <= baselineFds + 1, 5000).catch(() => openFds(pid));
  if (fds > baselineFds + 1) violations.push(`${fds} descriptors open, baseline ${baselineFds}`);
}

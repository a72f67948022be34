// A Supervisor on real processes (bunSpawner, the /proc/net/tcp probe, the real clock, the fake cloudflared), with
// deadlines that fail fast and say what did not happen.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { realClock } from "../../src/clock.ts";
import { createLogger } from "../../src/ops/log.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import { PortPool } from "../../src/supervisor/port-pool.ts";
import { procNetProbe } from "../../src/supervisor/proc-net.ts";
import { bunSpawner } from "../../src/supervisor/spawner.ts";
import { Supervisor, type SupervisorOptions } from "../../src/supervisor/supervisor.ts";
import { FAKE_CLOUDFLARED, portRange } from "../helpers/proxy-process.ts";
import { isAlive } from "../helpers/admin.ts";

/** Resolves once `pid` is gone; polls /proc, since another process's end sends us no event. */
export async function gone(pid: number): Promise<void> {
  for (let delay = 2; isAlive(pid); delay = Math.min(delay * 2, 50)) await Bun.sleep(delay);
}

export type LogLine = Record<string, unknown> & { msg: string };

/** Environment for the fake cloudflared, set for one test (the spawner hands children the proxy's environment). */
export function fakeEnv(vars: Record<string, string>): () => void {
  const before = Object.fromEntries(Object.keys(vars).map((key) => [key, process.env[key]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [key, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

export function realSupervisor(options: Partial<SupervisorOptions> = {}) {
  const [start, end] = portRange(20).split("-").map(Number) as [number, number];
  const lines: LogLine[] = [];
  const waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  const log = createLogger({
    format: "json",
    level: "debug",
    write: (text) => {
      const line = JSON.parse(text) as LogLine;
      lines.push(line);
      for (const waiter of waiters.filter((w) => w.predicate(line))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    },
  });
  const supervisor = new Supervisor(
    {
      cloudflaredPath: FAKE_CLOUDFLARED,
      cloudflaredArgs: [],
      idleTimeoutMs: 300_000,
      startupTimeoutMs: 5000,
      restartBackoffMs: 100,
      maxRestarts: 3,
      tunnelStartRate: 0,
      evictMinIdleMs: 0,
      maxTunnels: end - start + 1,
      ...options,
    },
    { clock: realClock, spawner: bunSpawner({ setpriv: Bun.which("setpriv") }), probe: procNetProbe(), pool: new PortPool(start, end), log, metrics: new Metrics() },
  );
  /** The first log line, seen or still to come, that matches. */
  const waitFor = (predicate: (line: LogLine) => boolean): Promise<LogLine> => {
    const seen = lines.find(predicate);
    return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ predicate, resolve }));
  };
  const stateDir = mkdtempSync(join(tmpdir(), "ttp-sup-"));
  const pidsOf = (hostname: string, suffix = "pids") => readFileSync(join(stateDir, `${hostname}.${suffix}`), "utf8").trim().split("\n").map(Number);
  const holder = { onTunnelLost: () => undefined };
  return { supervisor, lines, waitFor, stateDir, pidsOf, holder, range: [start, end] as const };
}

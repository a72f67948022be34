// One bench run: fresh processes for every route, each phase (phases.ts) measured route after route in an order
// rotated per run, one number per metric and route. bench.ts repeats it and summarises; report.ts renders.
import { startRealCloudflared, type RealCloudflared } from "./real.ts";
import { measurePhases, type Target } from "./phases.ts";
import { startBackend, startBare, startGoOriginal, startHaproxy, startOurs, type Route, type Tunnel } from "./routes.ts";
import type { RunResult } from "./report.ts";

export interface Plan {
  readonly bulk: number;
  readonly connects: number;
  readonly rtts: number;
  readonly cpsMs: number;
  readonly cpsClients: number;
  readonly idle: number;
  readonly colds: number;
  readonly slow: number;
  readonly streams: number;
  /** Unechoed bytes per stream in the loaded scenario, 0 = no limit (see go/loaded.go). */
  readonly window: number;
  readonly loadedWarmupMs: number;
  readonly loadedMs: number;
  readonly probeIntervalMs: number;
}

/** One configuration of our proxy: its column name, worker count, binary and runtime flags (BUN_OPTIONS). */
export interface OursSpec {
  readonly name: string;
  readonly workers: number;
  readonly binary: string;
  readonly bunOptions?: string;
  /** More command-line arguments for it. */
  readonly args?: readonly string[];
}

export const PHASES = ["memory", "slow", "bulk", "latency", "cold", "cps", "loaded"] as const;
export type Phase = (typeof PHASES)[number];

/** The Go original's column name. */
export const GO_ORIGINAL = "go";
/** Where the Go original's tunnel ports start: after the ranges of our columns (24000 + 100 per column). */
const GO_PORT_BASE = 29000;

export interface RunOptions {
  readonly plan: Plan;
  /** The phases to run (all by default); RSS at rest is read after "loaded". */
  readonly phases: ReadonlySet<Phase>;
  readonly ours: readonly OursSpec[];
  readonly bareWorkers: readonly number[];
  /** The Go original's binary, for its column; null: no column. */
  readonly goOriginal: string | null;
  /** Cloudflare's cloudflared, for cold starts through the real client; null: only the stand-in's. */
  readonly realCloudflared: string | null;
  /** Which run this is (0-based): the route order rotates by it, so no route is always measured first. */
  readonly index: number;
  readonly log: (text: string) => void;
}

export async function run(options: RunOptions): Promise<RunResult> {
  const { log } = options;
  const backend = await startBackend();
  const ports: Record<Tunnel, number> = { echo: await backend.listen("echo"), sink: await backend.listen("sink"), slow: await backend.listen("slow") };
  const started: { stop(): Promise<void> }[] = [];
  const targets: Target[] = [{ name: "direct", port: ports.echo, pid: null, kind: "direct" }];
  const add = (target: Target & { route?: Route }) => {
    if (target.route !== undefined) started.push(target.route);
    targets.push(target);
  };
  try {
    let real: RealCloudflared | null = null;
    if (options.realCloudflared !== null && options.phases.has("cold")) {
      real = await startRealCloudflared(options.realCloudflared, ports.echo, options.plan.colds, log);
      if (real !== null) started.push(real);
    }
    const haproxy = await startHaproxy(ports);
    if (haproxy === null) log("HAProxy not installed (apt-get install haproxy): its column is skipped");
    else add({ name: "haproxy", port: haproxy.port, pid: haproxy.pid, kind: "haproxy", route: haproxy });
    for (const n of options.bareWorkers) {
      const bare = await startBare(ports.echo, n);
      add({ name: `bare${n}`, port: bare.port, pid: bare.pid, kind: "bare", route: bare });
    }
    for (const [i, spec] of options.ours.entries()) {
      const ours = await startOurs(spec, backend, 24000 + 100 * i, real);
      add({ name: spec.name, port: ours.port, pid: ours.pid, kind: "ours", tunnels: ours, route: ours });
    }
    if (options.goOriginal !== null) {
      const original = await startGoOriginal(options.goOriginal, backend, GO_PORT_BASE, real);
      add({ name: GO_ORIGINAL, port: original.port, pid: original.pid, kind: "go", tunnels: original, route: original });
    }
    const shift = options.index % targets.length;
    const order = [...targets.slice(shift), ...targets.slice(0, shift)];
    return await measurePhases({ plan: options.plan, phases: options.phases, log, backend, ports, order, real });
  } finally {
    await Promise.all(started.map((r) => r.stop()));
    await backend.stop();
  }
}

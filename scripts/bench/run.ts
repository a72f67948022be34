// One bench run: fresh processes for every route, each phase measured route after route (in an order rotated per
// run), one number per metric and route. bench.ts repeats it and summarises; report.ts renders.
import { existsSync, readFileSync } from "node:fs";
import { clientHello, records } from "../../tests/helpers/builders.ts";
import { bulk, connectToFirstByte, connectionsPerSecond, openIdle, percentile, roundTrips, touch } from "./load.ts";
import { loadedScenario } from "./loaded.ts";
import { anonBytes, HOSTS, rssBytes, startBackend, startBare, startHaproxy, startOurs, type Ours, type Route, type Tunnel } from "./routes.ts";
import type { Metric, RunResult } from "./report.ts";

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
  /** Unechoed bytes per stream in the loaded scenario, 0 = no limit (see loaded-child.ts). */
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

export interface RunOptions {
  readonly plan: Plan;
  /** The phases to run (all by default); RSS at rest is read after "loaded". */
  readonly phases: ReadonlySet<Phase>;
  readonly ours: readonly OursSpec[];
  readonly bareWorkers: readonly number[];
  /** Which run this is (0-based): the route order rotates by it, so no route is always measured first. */
  readonly index: number;
  readonly log: (text: string) => void;
}

const MiB = 1024 * 1024;
/** After 5,000 handshakes, time for a garbage collector to settle before RSS is read (HAProxy has none). */
const IDLE_SETTLE_MS = 3000;
/** "At rest after the load": this long after a route's last client closed. */
const REST_MS = 5000;

const hello = (sni: string) => records(clientHello({ names: [sni], alpn: ["postgresql"] }));

interface Target {
  readonly name: string;
  readonly port: number;
  readonly pid: number | null;
  /** Which phases it takes part in. */
  readonly kind: "direct" | "ours" | "haproxy" | "bare";
  readonly ours?: Ours;
}

export async function run(options: RunOptions): Promise<RunResult> {
  const { plan, log } = options;
  const values: RunResult = {};
  const record = (metric: Metric, route: string, value: number) => ((values[metric] ??= {})[route] = value);
  const backend = await startBackend();
  const ports: Record<Tunnel, number> = { echo: await backend.listen("echo"), sink: await backend.listen("sink"), slow: await backend.listen("slow") };
  const started: Route[] = [];
  const targets: Target[] = [{ name: "direct", port: ports.echo, pid: null, kind: "direct" }];
  const haproxy = await startHaproxy(ports);
  if (haproxy === null) log("HAProxy not installed (apt-get install haproxy): its column is skipped");
  else (started.push(haproxy), targets.push({ name: "haproxy", port: haproxy.port, pid: haproxy.pid, kind: "haproxy" }));
  for (const n of options.bareWorkers) {
    const bare = await startBare(ports.echo, n);
    started.push(bare);
    targets.push({ name: `bare${n}`, port: bare.port, pid: bare.pid, kind: "bare" });
  }
  for (const [i, spec] of options.ours.entries()) {
    const ours = await startOurs(spec, backend, 24000 + 100 * i);
    started.push(ours);
    targets.push({ name: spec.name, port: ours.port, pid: ours.pid, kind: "ours", ours });
  }
  const shift = options.index % targets.length;
  const order = [...targets.slice(shift), ...targets.slice(0, shift)];
  const where = (t: Target, tunnel: Tunnel) => (t.kind === "direct" ? ports[tunnel] : t.port);
  const some = (...kinds: Target["kind"][]) => order.filter((t) => kinds.includes(t.kind));
  const proxies = some("ours", "haproxy", "bare");
  const settle = () => (Bun.gc(true), Bun.sleep(200));

  try {
    const phase = (name: Phase) => options.phases.has(name);
    for (const t of some("ours")) await touch(t.port, hello(HOSTS.echo));
    await Bun.sleep(IDLE_SETTLE_MS);
    for (const t of proxies) {
      record("rssFresh", t.name, rssBytes(t.pid as number) / MiB);
      record("anonFresh", t.name, anonBytes(t.pid as number) / MiB);
    }
    if (phase("memory")) log(`RSS per idle connection: ${plan.idle} held`);
    for (const t of phase("memory") ? proxies : []) {
      await settle();
      const before = rssBytes(t.pid as number);
      const sockets = await openIdle(t.port, hello(HOSTS.echo), plan.idle);
      await Bun.sleep(IDLE_SETTLE_MS);
      record("rssPerIdle", t.name, (rssBytes(t.pid as number) - before) / plan.idle / 1024);
      for (const socket of sockets) socket.end();
    }
    for (const t of some("ours")) for (const tunnel of ["sink", "slow"] as const) await touch(t.port, hello(HOSTS[tunnel]));

    if (phase("slow")) log(`slow backend: ${plan.slow / MiB} MiB pushed into a 4 MB/s backend`);
    for (const t of phase("slow") ? some("ours", "haproxy") : []) {
      const pid = t.pid as number;
      const before = rssBytes(pid);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
      await bulk(where(t, "slow"), hello(HOSTS.slow), plan.slow);
      clearInterval(sampler);
      record("slowGrowth", t.name, (peak - before) / MiB);
    }

    if (phase("bulk")) log(`bulk: ${plan.bulk / MiB} MiB, one stream`);
    for (const t of phase("bulk") ? some("direct", "ours", "haproxy") : []) {
      await settle();
      record("bulk", t.name, await bulk(where(t, "sink"), hello(HOSTS.sink), plan.bulk));
    }

    if (phase("latency")) log(`single connections: ${plan.connects} sequential connect + ClientHello + first byte; ${plan.rtts} 64 B round trips`);
    for (const t of phase("latency") ? some("direct", "ours", "haproxy") : []) {
      await settle();
      const samples: number[] = [];
      for (let i = 0; i < plan.connects; i++) samples.push(await connectToFirstByte(t.port, hello(HOSTS.echo)));
      samples.sort((a, b) => a - b);
      record("connectP50", t.name, percentile(samples, 50));
      record("connectP90", t.name, percentile(samples, 90));
      record("connectP99", t.name, percentile(samples, 99));
      const rtts = await roundTrips(t.port, hello(HOSTS.echo), plan.rtts);
      record("rttP50", t.name, percentile(rtts, 50));
      record("rttP99", t.name, percentile(rtts, 99));
    }

    if (phase("cold")) log(`cold start: ${plan.colds} new hostnames per worker count`);
    for (const t of phase("cold") ? some("ours") : []) record("coldP50", t.name, await coldStarts(t.ours as Ours, plan.colds));

    if (phase("cps")) log(`connections per second: ${plan.cpsClients} clients for ${plan.cpsMs} ms`);
    for (const t of phase("cps") ? order : []) {
      await settle();
      record("cps", t.name, await connectionsPerSecond(t.port, hello(HOSTS.echo), plan.cpsClients, plan.cpsMs));
    }

    if (phase("loaded")) log(`loaded: ${plan.streams} streams echoing 256 KiB chunks for ${plan.loadedMs} ms, a new connection every ${plan.probeIntervalMs} ms`);
    const rests: Promise<void>[] = [];
    for (const t of phase("loaded") ? order : []) {
      await settle();
      const pid = t.pid;
      const result = await loadedScenario(
        t.port,
        HOSTS.echo,
        { streams: plan.streams, window: plan.window, intervalMs: plan.probeIntervalMs, warmupMs: plan.loadedWarmupMs, measureMs: plan.loadedMs },
        () => (pid === null ? 0 : rssBytes(pid)),
      );
      const samples = result.probe.samples;
      record("loadedThroughput", t.name, result.throughput);
      record("loadedP50", t.name, percentile(samples, 50));
      record("loadedP99", t.name, percentile(samples, 99));
      record("loadedMax", t.name, samples.at(-1) ?? NaN);
      record("loadedFailed", t.name, result.probe.failed + result.streamsFailed);
      if (pid !== null) {
        record("rssPeakLoaded", t.name, result.peakRss / MiB);
        rests.push(Bun.sleep(REST_MS).then(() => {
          record("rssRest", t.name, rssBytes(pid) / MiB);
          record("anonRest", t.name, anonBytes(pid) / MiB);
        }));
      }
    }
    await Promise.all(rests);
    if (phase("loaded")) for (const t of proxies) record("rssRestEnd", t.name, rssBytes(t.pid as number) / MiB);
  } finally {
    await Promise.all(started.map((r) => r.stop()));
    await backend.stop();
  }
  return values;
}

/** Cold starts on new hostnames: the time to the first echoed byte minus the tunnel's own spawn-to-bind time; p50. */
async function coldStarts(ours: Ours, count: number): Promise<number> {
  const overheads: number[] = [];
  for (let i = 0; i < count; i++) {
    const sni = `cold-${i}-${Date.now()}.${HOSTS.echo.split(".").slice(1).join(".")}`;
    const total = await connectToFirstByte(ours.port, hello(sni));
    let line: Record<string, unknown> | undefined;
    for (let tries = 0; line === undefined && tries < 50; tries++) {
      line = ours.logLines().find((l) => l.msg === "tunnel starting" && l.tunnel === `cft-${sni}`);
      if (line === undefined) await Bun.sleep(20);
    }
    const boundFile = `${ours.stateDir}/cft-${sni}.bound`;
    if (line === undefined || !existsSync(boundFile)) continue;
    const boundAt = Number(readFileSync(boundFile, "utf8"));
    overheads.push(total - (boundAt - new Date(String(line.ts)).getTime()));
  }
  return percentile(overheads.sort((a, b) => a - b), 50);
}

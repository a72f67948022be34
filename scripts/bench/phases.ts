// The phases of one run against routes already started: memory, slow backend, bulk, single connections, cold start,
// connections per second and the loaded scenario, each route after route in the run's order. Where the peers could
// be the limit (bulk, connections/s, loaded) the CPU time of the route, of the peers and the machine's idle share are
// recorded over the same span, per connection or per MB.
import { readFileSync } from "node:fs";
import { coldStarts, realWithoutProxy } from "./cold.ts";
import { bulk, connectionsPerSecond, connectToFirstByte, hello, openIdle, percentile, roundTrips, touch } from "./load.ts";
import { loadedScenario } from "./loaded.ts";
import { meter, quietly, recordShares, sharesOf } from "./meter.ts";
import { anonBytes, rssBytes } from "./processes.ts";
import type { Metric, RunResult } from "./report.ts";
import type { RealCloudflared } from "./real.ts";
import { HOSTS, type Backend, type TunnelProxy, type Tunnel } from "./routes.ts";
import type { Phase, Plan } from "./run.ts";

export interface Target {
  readonly name: string;
  readonly port: number;
  readonly pid: number | null;
  /** Which phases it takes part in. */
  readonly kind: "direct" | "ours" | "go" | "haproxy" | "bare";
  /** For the proxies that start tunnels (ours, the Go original). */
  readonly tunnels?: TunnelProxy;
}

export interface PhaseContext {
  readonly plan: Plan;
  readonly phases: ReadonlySet<Phase>;
  readonly log: (text: string) => void;
  readonly backend: Backend;
  readonly ports: Record<Tunnel, number>;
  readonly order: readonly Target[];
  /** Cold starts through the real cloudflared; null: not measured. */
  readonly real: RealCloudflared | null;
}

const MiB = 1024 * 1024;
/** After 5,000 handshakes, time for a garbage collector to settle before RSS is read (HAProxy has none). */
const IDLE_SETTLE_MS = 3000;
/** "At rest after the load": this long after a route's last client closed. */
const REST_MS = 5000;

/**
 * The Go original holds six descriptors per proxied connection (two sockets, and a pipe for each direction's splice
 * while it waits for bytes) and exits when accept() runs out of them: hold no more connections than its limit allows.
 */
const GO_FDS_PER_CONNECTION = 6;

function goIdleMax(pid: number): number {
  const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))?.[1] ?? Infinity);
  return Math.floor((limit - 100) / GO_FDS_PER_CONNECTION / 100) * 100;
}

export async function measurePhases(c: PhaseContext): Promise<RunResult> {
  const { plan, log } = c;
  const values: RunResult = {};
  const record = (metric: Metric, route: string, value: number) => ((values[metric] ??= {})[route] = value);
  const some = (...kinds: Target["kind"][]) => c.order.filter((t) => kinds.includes(t.kind));
  const proxies = some("ours", "go", "haproxy", "bare");
  const tunnelProxies = some("ours", "go");
  const where = (t: Target, tunnel: Tunnel) => (t.kind === "direct" ? c.ports[tunnel] : t.port);
  const settle = () => (Bun.gc(true), Bun.sleep(200));
  const phase = (name: Phase) => c.phases.has(name);

  for (const t of tunnelProxies) await touch(t.port, hello(HOSTS.echo));
  await Bun.sleep(IDLE_SETTLE_MS);
  for (const t of proxies) {
    record("rssFresh", t.name, rssBytes(t.pid as number) / MiB);
    record("anonFresh", t.name, anonBytes(t.pid as number) / MiB);
  }
  if (phase("memory")) log(`RSS per idle connection: ${plan.idle} held`);
  for (const t of phase("memory") ? proxies : []) {
    await settle();
    const count = t.kind === "go" ? Math.min(plan.idle, goIdleMax(t.pid as number)) : plan.idle;
    if (count < plan.idle) log(`${t.name}: ${count} idle connections, not ${plan.idle}: each holds ${GO_FDS_PER_CONNECTION} descriptors there, and it exits when it runs out`);
    const before = rssBytes(t.pid as number);
    const idle = await openIdle(t.port, hello(HOSTS.echo), count);
    await Bun.sleep(IDLE_SETTLE_MS);
    record("rssPerIdle", t.name, (rssBytes(t.pid as number) - before) / count / 1024);
    await idle.release();
  }
  for (const t of tunnelProxies) for (const tunnel of ["sink", "slow"] as const) await touch(t.port, hello(HOSTS[tunnel]));

  if (phase("slow")) log(`slow backend: ${plan.slow / MiB} MiB pushed into a 4 MB/s backend`);
  for (const t of phase("slow") ? some("ours", "go", "haproxy") : []) {
    const pid = t.pid as number;
    const before = rssBytes(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
    await bulk(where(t, "slow"), hello(HOSTS.slow), plan.slow);
    clearInterval(sampler);
    record("slowGrowth", t.name, (peak - before) / MiB);
  }

  if (phase("bulk")) log(`bulk: ${plan.bulk / MiB} MiB, one stream`);
  for (const t of phase("bulk") ? some("direct", "ours", "go", "haproxy") : []) {
    const { result, routeMs, shares } = await quietly(`${t.name}, bulk`, async () => {
      await settle();
      const m = meter(t.pid, c.backend);
      const result = await bulk(where(t, "sink"), hello(HOSTS.sink), plan.bulk);
      m.end();
      return { result, routeMs: m.routeMs(), shares: sharesOf(m, t.pid !== null, result.cpuMs) };
    }, log);
    record("bulk", t.name, result.mbps);
    if (t.pid !== null) record("bulkCpu", t.name, routeMs / (plan.bulk / 1e6));
    record("bulkPeers", t.name, shares.peers);
  }

  if (phase("latency")) log(`single connections: ${plan.connects} sequential connect + ClientHello + first byte; ${plan.rtts} 64 B round trips`);
  for (const t of phase("latency") ? some("direct", "ours", "go", "haproxy", "bare") : []) {
    const { connects, rtts } = await quietly(`${t.name}, single connections`, async () => {
      await settle();
      const m = meter(t.pid, c.backend);
      const connects = await connectToFirstByte(t.port, hello(HOSTS.echo), plan.connects);
      const rtts = await roundTrips(t.port, hello(HOSTS.echo), plan.rtts);
      m.end();
      return { connects: connects.samples, rtts: rtts.samples, shares: sharesOf(m, t.pid !== null, connects.cpuMs + rtts.cpuMs) };
    }, log);
    record("connectP50", t.name, percentile(connects, 50));
    record("connectP90", t.name, percentile(connects, 90));
    record("connectP99", t.name, percentile(connects, 99));
    record("rttP50", t.name, percentile(rtts, 50));
    record("rttP99", t.name, percentile(rtts, 99));
  }

  if (phase("cold")) log(`cold start: ${plan.colds} new hostnames per route${c.real === null ? "" : `, then ${c.real.snis.length} through the real cloudflared`}`);
  if (phase("cold") && c.real !== null) {
    const real = await realWithoutProxy(c.real, c.real.snis, log);
    record("coldRealP50", "direct", real.cold);
    record("warmRealP50", "direct", real.warm);
  }
  for (const t of phase("cold") ? tunnelProxies : []) {
    const stamp = Date.now();
    const snis = Array.from({ length: plan.colds }, (_, i) => `cold-${i}-${stamp}.${HOSTS.echo.split(".").slice(1).join(".")}`);
    record("coldP50", t.name, (await coldStarts(t.tunnels as TunnelProxy, t.port, snis, log)).cold);
    if (c.real === null) continue;
    const real = await coldStarts(t.tunnels as TunnelProxy, t.port, c.real.snis, log);
    record("coldRealP50", t.name, real.cold);
    record("warmRealP50", t.name, real.warm);
  }

  if (phase("cps")) log(`connections per second: ${plan.cpsClients} clients for ${plan.cpsMs} ms`);
  for (const t of phase("cps") ? c.order : []) {
    const { result, routeMs, shares } = await quietly(`${t.name}, connections/s`, async () => {
      await settle();
      const m = meter(t.pid, c.backend);
      const result = await connectionsPerSecond(t.port, hello(HOSTS.echo), plan.cpsClients, plan.cpsMs);
      m.end();
      return { result, routeMs: m.routeMs(), shares: sharesOf(m, t.pid !== null, result.cpuMs) };
    }, log);
    if (result.failed > 0) log(`${t.name}: ${result.failed} connections failed during connections/s`);
    record("cps", t.name, result.cps);
    if (t.pid !== null) record("cpsCpu", t.name, (routeMs * 1000) / result.count);
    recordShares(record, "cps", t.name, shares);
  }

  if (phase("loaded")) log(`loaded: ${plan.streams} streams echoing 256 KiB chunks for ${plan.loadedMs} ms, a new connection every ${plan.probeIntervalMs} ms`);
  const rests: Promise<void>[] = [];
  for (const t of phase("loaded") ? c.order : []) {
    const pid = t.pid;
    const options = { streams: plan.streams, window: plan.window, intervalMs: plan.probeIntervalMs, warmupMs: plan.loadedWarmupMs, measureMs: plan.loadedMs };
    const { result, routeMs, shares } = await quietly(`${t.name}, loaded`, async () => {
      await settle();
      const m = meter(pid, c.backend);
      const result = await loadedScenario(t.port, hello(HOSTS.echo), options, () => (pid === null ? 0 : rssBytes(pid)), m);
      return { result, routeMs: m.routeMs(), shares: sharesOf(m, pid !== null, result.loadCpuMs) };
    }, log);
    const samples = result.probe.samples;
    record("loadedThroughput", t.name, result.throughput);
    record("loadedP50", t.name, percentile(samples, 50));
    record("loadedP99", t.name, percentile(samples, 99));
    record("loadedMax", t.name, samples.at(-1) ?? NaN);
    record("loadedFailed", t.name, result.probe.failed + result.streamsFailed);
    if (pid !== null) record("loadedCpu", t.name, routeMs / result.megabytesSinceGo);
    recordShares(record, "loaded", t.name, shares);
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
  return values;
}

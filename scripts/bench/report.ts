// Benchmark results: the metrics, their medians and ranges over runs, the ratios (ours at each worker count against
// HAProxy, direct, the bare forwarder and the Go original, computed within each run), the verdicts on the targets,
// the tables.
import { GO_ORIGINAL } from "./run.ts";
export const METRICS = {
  rssFresh: { label: "RSS fresh (after start, one warm tunnel)", unit: "MiB", better: "lower" },
  anonFresh: { label: "… of which anonymous (heaps, buffers, JIT code)", unit: "MiB", better: "lower" },
  rssPerIdle: { label: "RSS per idle proxied connection (5,000 held)", unit: "KiB", better: "lower" },
  rssPeakLoaded: { label: "RSS peak during the loaded scenario", unit: "MiB", better: "lower" },
  rssRest: { label: "RSS at rest, 5 s after the load", unit: "MiB", better: "lower" },
  anonRest: { label: "… of which anonymous", unit: "MiB", better: "lower" },
  rssRestEnd: { label: "RSS at the end of the run (rest ≥ 5 s)", unit: "MiB", better: "lower" },
  slowGrowth: { label: "RSS growth, client pushing into a 4 MB/s backend", unit: "MiB", better: "lower" },
  bulk: { label: "bulk throughput, one stream", unit: "MB/s", better: "higher" },
  bulkCpu: { label: "bulk: CPU time of the route per MB", unit: "ms/MB", better: "lower" },
  bulkPeers: { label: "… CPU of the load generator and the backend", unit: "% core", better: "none" },
  connectP50: { label: "connect + ClientHello + first byte p50", unit: "ms", better: "lower" },
  connectP90: { label: "… p90", unit: "ms", better: "lower" },
  connectP99: { label: "… p99", unit: "ms", better: "lower" },
  rttP50: { label: "64 B round trip p50", unit: "ms", better: "lower" },
  rttP99: { label: "64 B round trip p99", unit: "ms", better: "lower" },
  cps: { label: "connections per second, 32 clients", unit: "conn/s", better: "higher" },
  cpsCpu: { label: "connections/s: CPU time of the route per connection", unit: "µs", better: "lower" },
  cpsRouteShare: { label: "… CPU of the route", unit: "% core", better: "none" },
  cpsPeers: { label: "… CPU of the load generator and the backend", unit: "% core", better: "none" },
  cpsOther: { label: "… CPU of anything else (other processes, interrupts)", unit: "% core", better: "none" },
  cpsIdle: { label: "… idle", unit: "% core", better: "none" },
  loadedThroughput: { label: "loaded: echo throughput of the streams", unit: "MB/s", better: "higher" },
  loadedP50: { label: "loaded: new connection p50", unit: "ms", better: "lower" },
  loadedP99: { label: "loaded: new connection p99", unit: "ms", better: "lower" },
  loadedMax: { label: "loaded: new connection max", unit: "ms", better: "lower" },
  loadedFailed: { label: "loaded: failed probes + lost streams", unit: "count", better: "lower" },
  loadedCpu: { label: "loaded: CPU time of the route per echoed MB", unit: "ms/MB", better: "lower" },
  loadedRouteShare: { label: "… CPU of the route", unit: "% core", better: "none" },
  loadedPeers: { label: "… CPU of the load generators and the backend", unit: "% core", better: "none" },
  loadedOther: { label: "… CPU of anything else (other processes, interrupts)", unit: "% core", better: "none" },
  loadedIdle: { label: "… idle", unit: "% core", better: "none" },
  coldP50: { label: "cold start beyond the tunnel's own bind, p50", unit: "ms", better: "lower" },
  coldRealP50: { label: "… through the real cloudflared (direct: the client started by hand, no proxy)", unit: "ms", better: "lower" },
  warmRealP50: { label: "… the next connection through that tunnel, connect to first byte", unit: "ms", better: "lower" },
} as const;
export type Metric = keyof typeof METRICS;
/** One run: metric → route name (direct, haproxy, bareN, oursN, go) → value. */
export type RunResult = Partial<Record<Metric, Record<string, number>>>;

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spread(values: readonly number[]): Spread | null {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return null;
  const mid = finite.length >> 1;
  const median = finite.length % 2 === 1 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
  return { median, min: finite[0] as number, max: finite.at(-1) as number, n: finite.length };
}

/** A metric's value for `route` in every run that has it. */
export function valuesOf(runs: readonly RunResult[], metric: Metric, route: string): number[] {
  return runs.map((r) => r[metric]?.[route]).filter((v): v is number => v !== undefined);
}

/** Per-run ratios `route / reference` for a metric, then their spread: ratios are never taken across runs. */
export function ratioOf(runs: readonly RunResult[], metric: Metric, route: string, reference: string): Spread | null {
  return spread(runs.map((r) => (r[metric]?.[route] ?? NaN) / (r[metric]?.[reference] ?? NaN)));
}

const fmt = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? "—" : Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);

const fmtRatio = (s: Spread | null) => (s === null ? "—" : s.n === 1 ? `${s.median.toFixed(2)}×` : `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})`);

function render(header: string[], lines: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [row(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...lines.map(row)].join("\n");
}

/** Medians per route (ranges are in the JSON). */
export function valueTable(runs: readonly RunResult[], routes: readonly string[]): string {
  const lines: string[][] = [];
  for (const metric of Object.keys(METRICS) as Metric[]) {
    const cells = routes.map((route) => fmt(spread(valuesOf(runs, metric, route))?.median));
    if (cells.every((c) => c === "—")) continue;
    lines.push([METRICS[metric].label, METRICS[metric].unit, ...cells]);
  }
  return render(["metric", "unit", ...routes], lines);
}

/** A column of ours: its route name and worker count (the bare forwarder with as many workers is its floor). */
export interface OursColumn {
  readonly name: string;
  readonly workers: number;
}

/** Ratios of each of ours against `reference` (a route name, or `bare` = the bare forwarder with as many workers). */
export function ratioTable(runs: readonly RunResult[], ours: readonly OursColumn[], reference: string): string {
  const against = (o: OursColumn) => (reference === "bare" ? `bare${o.workers}` : reference);
  const lines: string[][] = [];
  for (const metric of Object.keys(METRICS) as Metric[]) {
    // Counts, growth against HAProxy's ~0, and shares of the machine's CPU: no meaningful ratio.
    if (metric === "loadedFailed" || metric === "slowGrowth" || METRICS[metric].better === "none") continue;
    const cells = ours.map((o) => fmtRatio(ratioOf(runs, metric, o.name, against(o))));
    if (cells.every((c) => c === "—")) continue;
    lines.push([METRICS[metric].label, ...cells]);
  }
  return render(["metric", ...ours.map((o) => `${o.name} / ${against(o)}`)], lines);
}

export interface Verdict {
  readonly target: string;
  /** The column of ours judged. */
  readonly route: string;
  /** null: not measured (HAProxy absent). */
  readonly met: boolean | null;
  readonly value: Spread | null;
  readonly detail: string;
}

interface TargetSpec {
  readonly name: string;
  /** The figure judged for one column of ours, from the runs: a ratio within each run, or an absolute value. */
  readonly figure: (runs: readonly RunResult[], ours: OursColumn) => Spread | null;
  readonly ok: (median: number) => boolean;
  readonly unit: "×" | "KiB" | "MiB";
}

/** Ours against another route in the same runs: the bare forwarder with as many workers, the Go original, HAProxy. */
const against = (metric: Metric, reference: (ours: OursColumn) => string) => (runs: readonly RunResult[], ours: OursColumn) =>
  ratioOf(runs, metric, ours.name, reference(ours));
const bare = (ours: OursColumn) => `bare${ours.workers}`;
const go = () => GO_ORIGINAL;
const haproxy = () => "haproxy";
const absolute = (metric: Metric) => (runs: readonly RunResult[], ours: OursColumn) => spread(valuesOf(runs, metric, ours.name));

/** What the proxy must reach, judged on the median of the runs (ratios within each run). */
export const TARGETS: readonly TargetSpec[] = [
  { name: "connections/s ≥ 0.9× the bare forwarder", figure: against("cps", bare), ok: (m) => m >= 0.9, unit: "×" },
  { name: "connections/s ≥ 1.0× the Go original", figure: against("cps", go), ok: (m) => m >= 1.0, unit: "×" },
  { name: "connect + ClientHello + first byte p50 ≤ 1.15× the bare forwarder", figure: against("connectP50", bare), ok: (m) => m <= 1.15, unit: "×" },
  { name: "loaded new-connection p99 ≤ 1.1× the bare forwarder", figure: against("loadedP99", bare), ok: (m) => m <= 1.1, unit: "×" },
  { name: "≤ 3.6 KiB per idle proxied connection", figure: absolute("rssPerIdle"), ok: (m) => m <= 3.6, unit: "KiB" },
  { name: "loaded echo throughput ≥ 1.0× the Go original", figure: against("loadedThroughput", go), ok: (m) => m >= 1.0, unit: "×" },
  { name: "no regression: bulk ≥ 1.1× HAProxy", figure: against("bulk", haproxy), ok: (m) => m >= 1.1, unit: "×" },
  { name: "no regression: loaded echo throughput ≥ 1.0× HAProxy", figure: against("loadedThroughput", haproxy), ok: (m) => m >= 1.0, unit: "×" },
  { name: "no regression: 64 B round trip p50 ≤ 1.1× HAProxy", figure: against("rttP50", haproxy), ok: (m) => m <= 1.1, unit: "×" },
];

const fmtFigure = (s: Spread | null, unit: TargetSpec["unit"]) => {
  if (s === null) return "not measured";
  const v = (x: number) => (unit === "×" ? `${x.toFixed(2)}×` : `${x.toFixed(unit === "KiB" ? 2 : 1)} ${unit}`);
  return s.n === 1 ? v(s.median) : `${v(s.median)} (${v(s.min)}–${v(s.max)})`;
};

export function verdicts(runs: readonly RunResult[], ours: readonly OursColumn[]): Verdict[] {
  return TARGETS.flatMap((t) =>
    ours.map((column) => {
      const value = t.figure(runs, column);
      return { target: t.name, route: column.name, met: value === null ? null : t.ok(value.median), value, detail: fmtFigure(value, t.unit) };
    }),
  );
}

export function verdictTable(all: readonly Verdict[], ours: readonly OursColumn[]): string {
  const lines = TARGETS.map((t) => [
    t.name,
    ...ours.map(({ name }) => {
      const v = all.find((x) => x.target === t.name && x.route === name) as Verdict;
      return `${v.met === null ? "n/a" : v.met ? "MET" : "MISSED"} ${v.detail}`;
    }),
  ]);
  return render(["target (median of the runs, range)", ...ours.map((o) => o.name)], lines);
}

// Benchmark results: the table, the ratios against direct and HAProxy, the target verdicts, and the JSON record.
export type RouteName = "direct" | "ours" | "haproxy";
export type Row = { readonly metric: string; readonly unit: string; readonly better: "higher" | "lower" } & Partial<Record<RouteName, number>>;

export interface Target {
  readonly name: string;
  readonly met: boolean | null;
  readonly detail: string;
}

const fmt = (value: number | undefined) =>
  value === undefined || Number.isNaN(value) ? "—" : value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);

const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? "—" : `${(a / b).toFixed(2)}×`);

export function table(rows: readonly Row[]): string {
  const header = ["metric", "unit", "direct", "ours", "haproxy", "ours/direct", "ours/haproxy"];
  const lines = rows.map((r) => [r.metric, r.unit, fmt(r.direct), fmt(r.ours), fmt(r.haproxy), ratio(r.ours, r.direct), ratio(r.ours, r.haproxy)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const render = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [render(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...lines.map(render)].join("\n");
}

export function verdicts(targets: readonly Target[]): string {
  return targets.map((t) => `${t.met === null ? "n/a " : t.met ? "MET " : "MISS"}  ${t.name}: ${t.detail}`).join("\n");
}

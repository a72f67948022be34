// Metric families of our own (no dependency): counters are plain numbers, text is built only when scraped, and the
// counts of other edge threads (snapshots) are added in at that moment.

/** An edge thread's counters and histograms, merged into the main thread's exposition at scrape time. */
export interface MetricsSnapshot {
  readonly counters: Readonly<Record<string, readonly (readonly [string, number])[]>>;
  readonly histograms: Readonly<Record<string, { readonly counts: readonly number[]; readonly sum: number; readonly count: number }>>;
}

export type Family = { render(lines: string[], others: readonly MetricsSnapshot[]): void };

export class Counter<L extends string = never> implements Family {
  private readonly values = new Map<string, number>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly label?: string,
    known: readonly L[] = [],
  ) {
    for (const value of known) this.values.set(value, 0);
    if (label === undefined) this.values.set("", 0);
  }

  inc(labelValue: L | "" = "", by = 1): void {
    this.values.set(labelValue, (this.values.get(labelValue) ?? 0) + by);
  }

  get(labelValue: L | "" = ""): number {
    return this.values.get(labelValue) ?? 0;
  }

  entries(): [string, number][] {
    return [...this.values];
  }

  render(lines: string[], others: readonly MetricsSnapshot[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    const totals = new Map(this.values);
    for (const other of others) {
      for (const [value, count] of other.counters[this.name] ?? []) totals.set(value, (totals.get(value) ?? 0) + count);
    }
    for (const [value, count] of totals) lines.push(`${this.name}${labels(this.label, value)} ${count}`);
  }
}

/** A value read from live state when scraped: a gauge, or a counter kept elsewhere (the fleet's, say). */
export class Reading implements Family {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly read: () => ReadonlyMap<string, number> | number,
    private readonly label?: string,
    private readonly type: "gauge" | "counter" = "gauge",
  ) {}

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    const value = this.read();
    if (typeof value === "number") lines.push(`${this.name} ${value}`);
    else for (const [labelValue, n] of value) lines.push(`${this.name}${labels(this.label, labelValue)} ${n}`);
  }
}

export class Histogram implements Family {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = new Float64Array(buckets.length);
  }

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (seconds <= (this.buckets[i] as number)) this.counts[i]!++;
  }

  get observations(): number {
    return this.count;
  }

  snapshot(): { counts: number[]; sum: number; count: number } {
    return { counts: [...this.counts], sum: this.sum, count: this.count };
  }

  render(lines: string[], others: readonly MetricsSnapshot[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    const counts = [...this.counts];
    let { sum, count } = this;
    for (const other of others) {
      const theirs = other.histograms[this.name];
      if (theirs === undefined) continue;
      theirs.counts.forEach((n, i) => (counts[i] = (counts[i] ?? 0) + n));
      sum += theirs.sum;
      count += theirs.count;
    }
    this.buckets.forEach((bound, i) => lines.push(`${this.name}_bucket{le="${bound}"} ${counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${count}`, `${this.name}_sum ${sum}`, `${this.name}_count ${count}`);
  }
}

export function labels(label: string | undefined, value: string): string {
  return label === undefined ? "" : `{${label}="${value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c))}"}`;
}


/** Two snapshots added up into one: the counters of edge threads that died, kept as one entry however many died. */
export function sumSnapshots(a: MetricsSnapshot, b: MetricsSnapshot): MetricsSnapshot {
  const counters: Record<string, (readonly [string, number])[]> = {};
  for (const [name, entries] of [...Object.entries(a.counters), ...Object.entries(b.counters)]) {
    const totals = new Map(counters[name] ?? []);
    for (const [value, count] of entries) totals.set(value, (totals.get(value) ?? 0) + count);
    counters[name] = [...totals];
  }
  const histograms: Record<string, { counts: number[]; sum: number; count: number }> = {};
  for (const [name, h] of [...Object.entries(a.histograms), ...Object.entries(b.histograms)]) {
    const into = histograms[name];
    if (into === undefined) histograms[name] = { counts: [...h.counts], sum: h.sum, count: h.count };
    else {
      h.counts.forEach((n, i) => (into.counts[i] = (into.counts[i] ?? 0) + n));
      into.sum += h.sum;
      into.count += h.count;
    }
  }
  return { counters, histograms };
}

// Prometheus metrics of our own (no dependency): counters are plain numbers, text is built only when scraped.
export const METRIC_PREFIX = "tcp_tunnel_proxy_";

export const OUTCOMES = [
  "proxied",
  "refused_no_sni",
  "refused_invalid",
  "refused_not_allowed",
  "refused_untrusted_proxy",
  "refused_limit",
  "timeout",
  "tunnel_failed",
  "backend_refused_tls",
  "backend_error",
  "cancel_forwarded",
  "cancel_relayed",
  "cancel_unroutable",
  "cancel_limited",
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** forwarded: to at least one local tunnel; relayed: to the fleet only; failed: no local forward could be written. */
export const CANCEL_RESULTS = ["forwarded", "relayed", "unroutable", "limited", "failed"] as const;
export type CancelResult = (typeof CANCEL_RESULTS)[number];

export const TUNNEL_FAILURES = ["login_required", "crash_loop", "start_failed"] as const;
export type TunnelFailure = (typeof TUNNEL_FAILURES)[number];

type Family = { render(lines: string[], others: readonly MetricsSnapshot[]): void };

/** An edge thread's counters and histograms, merged into the main thread's exposition at scrape time. */
export interface MetricsSnapshot {
  readonly counters: Readonly<Record<string, readonly (readonly [string, number])[]>>;
  readonly histograms: Readonly<Record<string, { readonly counts: readonly number[]; readonly sum: number; readonly count: number }>>;
}

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

export class Gauge implements Family {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly read: () => ReadonlyMap<string, number> | number,
    private readonly label?: string,
  ) {}

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
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

function labels(label: string | undefined, value: string): string {
  return label === undefined ? "" : `{${label}="${value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c))}"}`;
}

const HANDSHAKE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STARTUP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];

export class Metrics {
  readonly connections = new Counter<Outcome>(`${METRIC_PREFIX}connections_total`, "Client connections by outcome.", "outcome", OUTCOMES);
  readonly refusals = new Counter<string>(`${METRIC_PREFIX}refusals_total`, "Refused connections by detailed reason.", "reason");
  readonly tunnelStarts = new Counter<"ok" | "failed">(`${METRIC_PREFIX}tunnel_starts_total`, "Tunnel process starts by result.", "result", ["ok", "failed"]);
  readonly tunnelFailures = new Counter<TunnelFailure>(`${METRIC_PREFIX}tunnel_failures_total`,
    "Tunnels that entered the failed state, by why: a login prompt, too many crashes in a row, a start that failed.", "reason", TUNNEL_FAILURES);
  readonly tunnelRestarts = new Counter(`${METRIC_PREFIX}tunnel_restarts_total`, "Restarts of tunnels that crashed while in use or pinned.");
  readonly originFailures = new Counter(`${METRIC_PREFIX}tunnel_origin_failures_total`, "Connections whose tunnel closed before the backend answered: cloudflared could not reach the origin.");
  readonly bytes = new Counter<"client_to_backend" | "backend_to_client">(`${METRIC_PREFIX}bytes_total`, "Bytes forwarded, prelude included.", "direction", ["client_to_backend", "backend_to_client"]);
  readonly cancels = new Counter<CancelResult>(`${METRIC_PREFIX}cancel_requests_total`, "Plaintext PostgreSQL CancelRequests by result.", "result", CANCEL_RESULTS);
  readonly handshake = new Histogram(`${METRIC_PREFIX}handshake_seconds`, "Accept to ClientHello replayed to the backend.", HANDSHAKE_BUCKETS);
  readonly tunnelStartup = new Histogram(`${METRIC_PREFIX}tunnel_startup_seconds`, "Tunnel spawn to listening.", STARTUP_BUCKETS);
  private readonly gauges: Gauge[] = [];

  /** Gauges read live state (open connections, tunnels by state, pinned tunnels) only when scraped. */
  addGauges(activeConnections: () => number, tunnelsByState: () => ReadonlyMap<string, number>, pinned: () => number): void {
    this.gauges.push(
      new Gauge(`${METRIC_PREFIX}active_connections`, "Client connections open now.", activeConnections),
      new Gauge(`${METRIC_PREFIX}tunnels`, "Tunnels by state.", tunnelsByState, "state"),
      new Gauge(`${METRIC_PREFIX}tunnels_pinned`, "Tunnels pinned by --warm or the admin API (never stopped for idleness).", pinned),
    );
  }

  /** What an edge thread counted, for the main thread's exposition. */
  snapshot(): MetricsSnapshot {
    const counters = [this.connections, this.refusals, this.bytes, this.cancels, this.originFailures];
    return {
      counters: Object.fromEntries(counters.map((counter) => [counter.name, counter.entries()])),
      histograms: { [this.handshake.name]: this.handshake.snapshot() },
    };
  }

  /** The exposition text: this process's families, with what the other edge threads counted added in. */
  render(others: readonly MetricsSnapshot[] = []): string {
    const lines: string[] = [];
    const families: Family[] = [this.connections, this.refusals, ...this.gauges, this.tunnelStarts, this.tunnelFailures, this.tunnelRestarts,
      this.originFailures, this.bytes, this.cancels, this.handshake, this.tunnelStartup];
    for (const family of families) family.render(lines, others);
    return lines.join("\n") + "\n";
  }
}

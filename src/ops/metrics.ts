// The proxy's Prometheus metrics: every family, what an edge thread sends the main thread, and the exposition.
import { Counter, Histogram, Reading, type Family, type MetricsSnapshot } from "./metric-families.ts";

export type { MetricsSnapshot } from "./metric-families.ts";
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
  "health_check",
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** forwarded: to at least one local tunnel; relayed: to the fleet only; failed: no local forward could be written. */
export const CANCEL_RESULTS = ["forwarded", "relayed", "unroutable", "limited", "failed"] as const;
export type CancelResult = (typeof CANCEL_RESULTS)[number];

/** Refusals because no tunnel could be had, listed from the start so alerts see them at 0. */
export const TUNNEL_REFUSALS = ["tunnel_capacity", "pool_exhausted", "tunnel_start_rate"];

export const TUNNEL_FAILURES = ["login_required", "crash_loop", "start_failed"] as const;
export type TunnelFailure = (typeof TUNNEL_FAILURES)[number];

const HANDSHAKE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STARTUP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];

export class Metrics {
  readonly connections = new Counter<Outcome>(`${METRIC_PREFIX}connections_total`, "Client connections by outcome.", "outcome", OUTCOMES);
  readonly refusals = new Counter<string>(`${METRIC_PREFIX}refusals_total`, "Refused connections by detailed reason.", "reason", TUNNEL_REFUSALS);
  readonly tunnelStarts = new Counter<"ok" | "failed">(`${METRIC_PREFIX}tunnel_starts_total`, "Tunnel process starts by result.", "result", ["ok", "failed"]);
  readonly tunnelFailures = new Counter<TunnelFailure>(`${METRIC_PREFIX}tunnel_failures_total`,
    "Tunnels that entered the failed state, by why: a login prompt, too many crashes in a row, a start that failed.", "reason", TUNNEL_FAILURES);
  readonly tunnelRestarts = new Counter(`${METRIC_PREFIX}tunnel_restarts_total`, "Restarts of tunnels that crashed while in use or pinned.");
  readonly originFailures = new Counter(`${METRIC_PREFIX}tunnel_origin_failures_total`, "Connections whose tunnel closed before the backend answered: cloudflared could not reach the origin.");
  readonly bytes = new Counter<"client_to_backend" | "backend_to_client">(`${METRIC_PREFIX}bytes_total`, "Bytes forwarded, prelude included.", "direction", ["client_to_backend", "backend_to_client"]);
  readonly cancels = new Counter<CancelResult>(`${METRIC_PREFIX}cancel_requests_total`, "Plaintext PostgreSQL CancelRequests by result.", "result", CANCEL_RESULTS);
  readonly handshake = new Histogram(`${METRIC_PREFIX}handshake_seconds`, "Accept to ClientHello replayed to the backend.", HANDSHAKE_BUCKETS);
  readonly tunnelStartup = new Histogram(`${METRIC_PREFIX}tunnel_startup_seconds`, "Tunnel spawn to listening.", STARTUP_BUCKETS);
  private readonly readings: Reading[] = [];

  /**
   * A family read from live state when scraped (`name` without the prefix): open connections, tunnels by state,
   * the fleet's counts. With `label`, `read` gives a value per label value.
   */
  addReading(name: string, help: string, read: () => ReadonlyMap<string, number> | number, options: { label?: string; type?: "gauge" | "counter" } = {}): void {
    this.readings.push(new Reading(`${METRIC_PREFIX}${name}`, help, read, options.label, options.type));
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
    const families: Family[] = [this.connections, this.refusals, ...this.readings, this.tunnelStarts, this.tunnelFailures, this.tunnelRestarts,
      this.originFailures, this.bytes, this.cancels, this.handshake, this.tunnelStartup];
    for (const family of families) family.render(lines, others);
    return lines.join("\n") + "\n";
  }
}

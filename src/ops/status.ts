// GET /status on the admin server: the proxy at a glance — version, node, uptime, drain, edges, open connections,
// outcomes since start and over the last minute, tunnels and fleet — the document the status page at GET / shows.
import { hostname } from "node:os";
import type { Clock, Timer } from "../clock.ts";
import type { Metrics, MetricsSnapshot } from "./metrics.ts";
import { OutcomeHistory, type Totals } from "./outcome-history.ts";
import type { TunnelInfo } from "../supervisor/types.ts";

/** Outcome totals are sampled this often, so "last minute" spans 60 s to 60 s plus this. */
export const SAMPLE_EVERY_MS = 5000;

/** Who may start and stop tunnels: a bearer token holder, anyone on this machine (loopback admin), or nobody. */
export type ControlMode = "token" | "loopback" | "off";

export function controlMode(token: string | null, loopback: boolean): ControlMode {
  if (token !== null) return "token";
  return loopback ? "loopback" : "off";
}

/** The node id when none is configured: this machine and the port clients connect to. */
export function defaultNodeId(listenPort: number): string {
  return `${hostname()}:${listenPort}`;
}

/** connections_total by outcome, this thread's counts and every edge worker's added up. */
export function outcomeTotals(metrics: Metrics, others: readonly MetricsSnapshot[]): Map<string, number> {
  const totals = new Map(metrics.connections.entries());
  for (const other of others) {
    for (const [outcome, count] of other.counters[metrics.connections.name] ?? []) totals.set(outcome, (totals.get(outcome) ?? 0) + count);
  }
  return totals;
}

export interface StatusInputs {
  readonly version: string;
  readonly nodeId: string;
  readonly workers: number;
  readonly control: ControlMode;
  readonly clock: Clock;
  readonly draining: () => boolean;
  /** Edge threads accepting clients now. */
  readonly edgesUp: () => number;
  /** Client connections open now, every edge included. */
  readonly connections: () => number;
  readonly outcomes: () => Promise<Totals>;
  /** What GET /tunnels answers. */
  readonly tunnels: () => readonly TunnelInfo[];
  /** The fleet's live members; absent without a fleet. */
  readonly fleet?: () => Promise<readonly unknown[]>;
}

export interface StatusDocument {
  readonly version: string;
  readonly node_id: string;
  readonly uptime_seconds: number;
  readonly draining: boolean;
  readonly workers: number;
  readonly edges_up: number;
  readonly connections: number;
  readonly outcomes: { readonly since_start: Record<string, number>; readonly last_minute: Record<string, number> };
  readonly tunnels: readonly TunnelInfo[];
  readonly fleet: readonly unknown[] | null;
  /** Why the fleet's members could not be read this time; only then present. */
  readonly fleet_error?: string;
  readonly control: ControlMode;
}

export class StatusReporter {
  private readonly history = new OutcomeHistory();
  private readonly startedAt: number;
  private sampling: Timer | null = null;
  private stopped = false;

  constructor(private readonly inputs: StatusInputs) {
    this.startedAt = inputs.clock.now();
  }

  /** Samples the outcome totals now and then every SAMPLE_EVERY_MS, for as long as the process runs. */
  start(): void {
    const tick = () => {
      const at = this.inputs.clock.now();
      // A sample that cannot be taken is skipped: the next one comes all the same.
      this.inputs.outcomes().then((totals) => this.history.record(at, totals), () => undefined)
        .finally(() => {
          if (!this.stopped) this.sampling = this.inputs.clock.after(SAMPLE_EVERY_MS, tick);
        });
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    this.sampling?.cancel();
  }

  async read(): Promise<StatusDocument> {
    const { inputs } = this;
    const at = inputs.clock.now();
    const [totals, fleet] = await Promise.all([inputs.outcomes(), this.fleet()]);
    return {
      version: inputs.version,
      node_id: inputs.nodeId,
      uptime_seconds: Math.floor((at - this.startedAt) / 1000),
      draining: inputs.draining(),
      workers: inputs.workers,
      edges_up: inputs.edgesUp(),
      connections: inputs.connections(),
      outcomes: { since_start: Object.fromEntries(totals), last_minute: Object.fromEntries(this.history.lastWindow(at, totals)) },
      tunnels: inputs.tunnels(),
      ...fleet,
      control: inputs.control,
    };
  }

  /** A fleet whose members cannot be read now (its Redis is down) is shown as such rather than failing the page. */
  private async fleet(): Promise<{ fleet: readonly unknown[] | null; fleet_error?: string }> {
    if (this.inputs.fleet === undefined) return { fleet: null };
    try {
      return { fleet: await this.inputs.fleet() };
    } catch (error) {
      return { fleet: [], fleet_error: error instanceof Error ? error.message : String(error) };
    }
  }
}

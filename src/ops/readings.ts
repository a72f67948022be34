// The metric families read from live state when scraped: open connections, tunnels, build, drain, edges, fleet.
import type { Metrics } from "./metrics.ts";
import { VERSION } from "../version.ts";
import type { TunnelState } from "../supervisor/types.ts";

export interface LiveState {
  /** Open client connections (and cancel forwards) across every edge. */
  readonly active: () => number;
  readonly tunnels: { countByState(): ReadonlyMap<TunnelState, number>; pinnedCount(): number };
  readonly draining: () => boolean;
  /** Edges accepting clients now. */
  readonly edgesUp: () => number;
  /** --workers: the edges there should be. */
  readonly workers: number;
  /** The fleet, when one is configured: without it, none of its families exists. */
  readonly fleet: { readonly up: boolean; readonly memberCount: number; counts(): Record<string, number> } | null;
}

export function addProxyReadings(metrics: Metrics, state: LiveState): void {
  metrics.addReading("active_connections", "Client connections open now, cancel forwards in flight included.", state.active);
  metrics.addReading("tunnels", "Tunnels by state.", () => state.tunnels.countByState(), { label: "state" });
  metrics.addReading("tunnels_pinned", "Tunnels pinned by --warm or the admin API (never stopped for idleness).", () => state.tunnels.pinnedCount());
  metrics.addReading("build_info", "Always 1; the version of the running binary is its label.", () => new Map([[VERSION, 1]]), { label: "version" });
  metrics.addReading("draining", "1 while the proxy drains after SIGTERM or SIGINT.", () => (state.draining() ? 1 : 0));
  metrics.addReading("edges_up", "Edge threads accepting clients now.", state.edgesUp);
  metrics.addReading("edges_configured", "Edge threads there should be (--workers).", () => state.workers);
  const fleet = state.fleet;
  if (fleet === null) return;
  metrics.addReading("fleet_redis_up", "1 while the fleet's Redis server is connected and subscribed.", () => (fleet.up ? 1 : 0));
  metrics.addReading("fleet_members", "Live fleet members at the last refresh, this one included.", () => fleet.memberCount);
  metrics.addReading("fleet_cancels_total", "Cancels other members relayed here, by what became of them.", () => new Map(Object.entries(fleet.counts())),
    { label: "result", type: "counter" });
}

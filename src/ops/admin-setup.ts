// The admin server as a running proxy starts it: its sources (metrics of every edge, tunnels, tunnel control, health,
// the fleet) and the status page's reporter, bound on --metrics-listen.
import type { Server } from "bun";
import type { Config } from "../config/load.ts";
import type { ListenAddress } from "../config/listen.ts";
import { realClock } from "../clock.ts";
import { isLoopbackHost, startAdmin } from "./admin.ts";
import { ListenFailure } from "./listen-problem.ts";
import type { Logger } from "./log.ts";
import type { Metrics, MetricsSnapshot } from "./metrics.ts";
import { StatusReporter, controlMode, outcomeTotals } from "./status.ts";
import type { TunnelControl, TunnelInfo } from "../supervisor/types.ts";
import { VERSION } from "../version.ts";

export interface AdminParts {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Every edge worker's counters (none without workers). */
  readonly snapshots: () => Promise<MetricsSnapshot[]>;
  readonly tunnels: () => readonly TunnelInfo[];
  readonly control: TunnelControl;
  readonly nodeId: string;
  readonly draining: () => boolean;
  readonly edgesUp: () => number;
  readonly connections: () => number;
  /** Why the proxy is not healthy now, or null. */
  readonly unhealthy: () => string | null;
  /** The fleet's live members; absent without a fleet. */
  readonly fleet?: () => Promise<readonly unknown[]>;
}

/** Binds the admin server; throws a ListenFailure naming the address when it cannot. */
export function serveAdmin(address: ListenAddress, parts: AdminParts): { server: Server<undefined>; status: StatusReporter } {
  const { config, metrics } = parts;
  const loopback = isLoopbackHost(address.host);
  const fleet = parts.fleet === undefined ? {} : { fleet: parts.fleet };
  const status = new StatusReporter({
    version: VERSION,
    nodeId: parts.nodeId,
    workers: config.workers,
    control: controlMode(config.adminToken, loopback),
    clock: realClock,
    draining: parts.draining,
    edgesUp: parts.edgesUp,
    connections: parts.connections,
    outcomes: async () => outcomeTotals(metrics, await parts.snapshots()),
    tunnels: parts.tunnels,
    ...fleet,
  });
  let server: Server<undefined>;
  try {
    server = startAdmin(address, {
      metrics: { render: async () => metrics.render(await parts.snapshots()) },
      tunnels: parts.tunnels,
      control: parts.control,
      unhealthy: parts.unhealthy,
      token: config.adminToken,
      loopback,
      allowSniSuffix: config.allowSniSuffix,
      log: parts.log,
      status: () => status.read(),
      ...fleet,
    }, config.reusePort);
  } catch (error) {
    throw new ListenFailure(address.text, error);
  }
  status.start();
  parts.log.info("admin listening", { listen: address.text, port: server.port });
  return { server, status };
}

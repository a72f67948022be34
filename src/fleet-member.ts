// This proxy as a member of a fleet: the fleet module (which knows no connection) given what it needs from the
// edge — the local tunnels for its record, and local routing of the cancels other members relay.
import type { Config } from "./config/load.ts";
import type { Logger } from "./ops/log.ts";
import { Fleet } from "./fleet/fleet.ts";
import type { Slots } from "./edge/cancel.ts";
import { relayedCancelRoute } from "./edge/relayed-cancel.ts";
import type { TunnelInfo } from "./supervisor/types.ts";
import { VERSION } from "./version.ts";

export interface MemberParts {
  readonly config: Config;
  readonly log: Logger;
  readonly nodeId: string;
  /** The client port this proxy listens on (the configured one may be 0). */
  readonly port: number;
  readonly tunnels: () => readonly TunnelInfo[];
  /** Ports of the running tunnels a client's open connections use, newest first, at most --cancel-fanout. */
  readonly targets: (client: string) => Promise<number[]>;
  /** Places under --max-connections for the forwards of relayed cancels. */
  readonly slots: Slots;
}

/** Joins the fleet of --fleet-redis in the background: the proxy serves whatever Redis does. */
export function joinFleet(url: string, parts: MemberParts): Fleet {
  const { config, log } = parts;
  const listen = config.listen.port === 0 ? config.listen.text.replace(/:0$/, `:${parts.port}`) : config.listen.text;
  const route = relayedCancelRoute({ config, targets: parts.targets, slots: parts.slots, log });
  const fleet = new Fleet(
    { url, name: config.fleetName, nodeId: parts.nodeId, version: VERSION, listen, startedAt: Date.now() },
    { log, tunnels: parts.tunnels, route },
  );
  fleet.start();
  return fleet;
}

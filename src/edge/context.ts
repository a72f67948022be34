// What a connection needs from the edge that owns it: configuration, tunnels, limits, cancel routing, logs, metrics.
import type { Connection } from "./connection.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics, Outcome } from "../ops/metrics.ts";
import type { TunnelProvider } from "../supervisor/types.ts";

export type EdgeConfig = Pick<Config, "helloTimeoutMs" | "onNoSni" | "allowSniSuffix" | "hostnameTemplate" | "sendProxy" | "cancelFanout">;

/** A verdict that another thread may have to give: the value now, or a promise of it. */
export type Maybe<T> = T | Promise<T>;

export interface EdgeContext {
  readonly config: EdgeConfig;
  readonly tunnels: TunnelProvider;
  readonly log: Logger;
  readonly metrics: Metrics;
  isTrusted(address: string): boolean;
  /** Moves the connection's limit count to `address` (a trusted PROXY source); false when that address is full. */
  moveKey(connection: Connection, address: string): Maybe<boolean>;
  /** The move was allowed and the connection still opens: from now on it counts under `address` here too. */
  rekey(connection: Connection, address: string): void;
  connectBackend(port: number, connection: Connection): void;
  /** The connection is proxied from now on: a cancel from its client address may reach its tunnel. */
  proxied(connection: Connection): void;
  /** Ports of the running tunnels a cancel from `address` goes to, the most recently used first (DESIGN §1a). */
  cancelTargets(address: string): Promise<number[]>;
  /** Called once, when the connection has given back everything it took; `reason` is set for anything but a clean close. */
  finished(connection: Connection, outcome: Outcome, reason: string | undefined): void;
}

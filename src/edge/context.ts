// What a connection needs from the listener that owns it: configuration, tunnels, logging, metrics and bookkeeping.
import type { Connection } from "./connection.ts";
import type { Config } from "../config/load.ts";
import type { Fields, Logger } from "../ops/log.ts";
import type { Metrics, Outcome } from "../ops/metrics.ts";
import type { TunnelProvider } from "../supervisor/types.ts";

export type EdgeConfig = Pick<Config, "helloTimeoutMs" | "onNoSni" | "allowSniSuffix" | "hostnameTemplate" | "sendProxy">;

export interface EdgeContext {
  readonly config: EdgeConfig;
  readonly tunnels: TunnelProvider;
  readonly log: Logger;
  readonly metrics: Metrics;
  isTrusted(address: string): boolean;
  /** Moves the connection's per-IP count to `address`; false when that address is over its limit. */
  moveLimit(connection: Connection, address: string): boolean;
  connectBackend(port: number, connection: Connection): void;
  /** Called once, when both sockets are closed, with the summary fields. */
  finished(connection: Connection, outcome: Outcome, summary: Fields): void;
}

// What a connection needs from the edge that owns it: configuration, tunnels, limits, cancel routing, logs, metrics.
import type { Connection } from "./connection.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics, Outcome } from "../ops/metrics.ts";
import type { TunnelProvider } from "../supervisor/types.ts";
import type { Slots } from "./cancel.ts";
import type { CancelRoute, ReceivedCancel } from "./cancel-router.ts";

export type EdgeConfig = Pick<Config, "helloTimeoutMs" | "onNoSni" | "allowSniSuffix" | "hostnameTemplate" | "sendProxy" | "proxyReplay" | "cancelFanout">;

/** A verdict that another thread may have to give: the value now, or a promise of it. */
export type Maybe<T> = T | Promise<T>;

export interface EdgeContext {
  readonly config: EdgeConfig;
  readonly tunnels: TunnelProvider;
  readonly log: Logger;
  readonly metrics: Metrics;
  isTrusted(address: string): boolean;
  /** Counts the connection under `address` for --max-conns-per-ip; false, counting nothing, when it is full. */
  admit(connection: Connection, address: string): Maybe<boolean>;
  /** The connection's client is `address` (a trusted PROXY source): cancel affinity keys it there from now on. */
  rekey(connection: Connection, address: string): void;
  connectBackend(port: number, connection: Connection): void;
  /** The connection is proxied from now on: a cancel from its client address may reach its tunnel. */
  proxied(connection: Connection): void;
  /** Where a plaintext CancelRequest goes: nowhere over --cancel-rate, else its client's tunnels (and the fleet). */
  routeCancel(cancel: ReceivedCancel): Promise<CancelRoute>;
  /** Places under --max-connections for cancel forwards in flight. */
  readonly forwardSlots: Slots;
  /** Called once, when the connection has given back everything it took; `reason` is set for anything but a clean close. */
  finished(connection: Connection, outcome: Outcome, reason: string | undefined): void;
}

// Messages between the main thread (supervisor, limits, metrics) and the edge worker threads. A port delivers in
// order, which the lease caches rely on: a worker's leases reach the main thread before its acknowledgement.
import type { Config } from "../config/load.ts";
import type { ErrorCode } from "../errors.ts";
import type { RecentTunnel } from "./clients.ts";
import type { CancelRoute, ReceivedCancel } from "./cancel-router.ts";
import type { MetricsSnapshot } from "../ops/metrics.ts";

/** What a worker is started with. */
export interface WorkerSetup {
  readonly config: Omit<Config, "adminToken" | "secrets">;
  readonly index: number;
  /** The shared --max-connections counter. */
  readonly total: SharedArrayBuffer;
  /** The port the first edge bound (it differs from the configured one for `:0`). */
  readonly port: number;
  /** Test fault injection: throw an uncaught error this long after listening. */
  readonly crashAfterMs?: number;
}

export type ToMain =
  | { readonly t: "listening" }
  | { readonly t: "bindFailed"; readonly reason: string }
  /** A cold tunnel is needed: answered by leased or refused. */
  | { readonly t: "acquire"; readonly id: number; readonly hostname: string }
  /** The worker leased a ready tunnel from its cache: answered by lost only if the supervisor disagrees. */
  | { readonly t: "lease"; readonly id: number; readonly hostname: string; readonly port: number }
  | { readonly t: "release"; readonly id: number }
  | { readonly t: "withdrawn"; readonly seq: number }
  | { readonly t: "admit"; readonly id: number; readonly address: string }
  | { readonly t: "forget"; readonly id: number }
  | { readonly t: "cancel"; readonly q: number; readonly cancel: ReceivedCancel }
  | { readonly t: "recent"; readonly q: number; readonly tunnels: readonly RecentTunnel[] }
  | { readonly t: "metrics"; readonly q: number; readonly snapshot: MetricsSnapshot }
  | { readonly t: "drained" }
  /** The worker hit an uncaught error and exits: why, and its counters so far. */
  | { readonly t: "dying"; readonly error: string; readonly snapshot: MetricsSnapshot };

export type ToWorker =
  | { readonly t: "leased"; readonly id: number; readonly port: number }
  | { readonly t: "refused"; readonly id: number; readonly code: ErrorCode; readonly message: string }
  | { readonly t: "lost"; readonly id: number; readonly reason: string }
  | { readonly t: "offer"; readonly hostname: string; readonly port: number }
  | { readonly t: "withdraw"; readonly hostname: string; readonly seq: number }
  | { readonly t: "exited"; readonly hostname: string; readonly reason: string }
  | { readonly t: "verdict"; readonly id: number; readonly allowed: boolean }
  | { readonly t: "cancelRoute"; readonly q: number; readonly route: CancelRoute }
  | { readonly t: "recent?"; readonly q: number; readonly address: string }
  | { readonly t: "metrics?"; readonly q: number }
  | { readonly t: "drain" }
  | { readonly t: "closeAll"; readonly reason: string };

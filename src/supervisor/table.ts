// The tunnels by hostname, and the one path every state change takes: the checked transition, then what entering or
// leaving a state means for the start's waiters, the lease caches and the table itself.
import type { Clock } from "../clock.ts";
import { ProxyError } from "../errors.ts";
import type { Logger } from "../ops/log.ts";
import { isLeasable, transition } from "./state.ts";
import { Deferred, Tunnel } from "./tunnel.ts";
import type { EdgeNotices, TunnelState } from "./types.ts";

export interface ChangeOptions {
  /** Why a start ends without listening: what its waiters get. */
  readonly why?: Error;
  /** The caches were already withdrawn (a decided stop awaited it). */
  readonly withdrawn?: boolean;
}

export class TunnelTable {
  private readonly tunnels = new Map<string, Tunnel>();
  /** Set by stopAll(): nothing starts any more. */
  closing = false;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly caches: EdgeNotices,
  ) {}

  get(hostname: string): Tunnel | undefined {
    return this.tunnels.get(hostname);
  }

  all(): Tunnel[] {
    return [...this.tunnels.values()];
  }

  /** A new record in `starting`; the caller begins its start. */
  create(hostname: string): Tunnel {
    const tunnel = new Tunnel(hostname, this.clock.now());
    this.tunnels.set(hostname, tunnel);
    return tunnel;
  }

  /** Moves `tunnel` to `to` (if legal, see state.ts) and applies what that move means. Returns whether it moved. */
  change(tunnel: Tunnel, to: TunnelState, options: ChangeOptions = {}): boolean {
    const from = tunnel.state;
    if (!transition(tunnel, to, this.log)) return false;
    if (from === "starting") {
      if (isLeasable(to)) tunnel.started.resolve();
      else tunnel.started.reject(options.why ?? new ProxyError("tunnel_stopping", `tunnel ${tunnel.hostname} was stopped`));
    }
    if (to === "starting") tunnel.started = new Deferred();
    if (!isLeasable(from) && isLeasable(to)) this.offer(tunnel);
    if (isLeasable(from) && !isLeasable(to) && options.withdrawn !== true) this.withdraw(tunnel);
    if (to === "stopped") {
      tunnel.cancelTimers();
      if (this.tunnels.get(tunnel.hostname) === tunnel) this.tunnels.delete(tunnel.hostname);
    }
    return true;
  }

  /** The caches may lease `tunnel` directly from now on. */
  offer(tunnel: Tunnel): void {
    if (tunnel.process !== null) this.caches.offer(tunnel.hostname, tunnel.process.port);
  }

  /** The caches must stop leasing `tunnel`, without waiting for them: this stop does not depend on their answer. */
  private withdraw(tunnel: Tunnel): void {
    this.caches.withdraw(tunnel.hostname).catch((error: Error) =>
      this.log.warn("lease caches did not withdraw a tunnel", { tunnel: tunnel.hostname, reason: error.message }));
  }
}

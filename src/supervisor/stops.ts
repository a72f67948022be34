// Stopping tunnels: the idle timer, stops decided for a tunnel without connections (idle, eviction, an unforced admin
// stop — the lease caches are withdrawn first and the decision re-checked), and stops that do not wait.
import type { Clock } from "../clock.ts";
import { ProxyError } from "../errors.ts";
import type { Logger } from "../ops/log.ts";
import { isLeasable } from "./state.ts";
import type { TunnelTable } from "./table.ts";
import type { Tunnel } from "./tunnel.ts";
import type { EdgeNotices } from "./types.ts";

export type StopReason = "idle" | "evicted" | "admin" | "shutdown";

export class Stops {
  constructor(
    private readonly table: TunnelTable,
    private readonly options: { readonly idleTimeoutMs: number; readonly evictMinIdleMs: number },
    private readonly deps: { readonly clock: Clock; readonly log: Logger; readonly caches: EdgeNotices },
  ) {}

  /** An idle, unpinned tunnel is stopped after --idle-timeout unless a connection comes first (lease() cancels this). */
  armIdle(tunnel: Tunnel): void {
    tunnel.idleTimer?.cancel();
    tunnel.idleTimer = null;
    if (tunnel.state !== "idle" || tunnel.pinned) return;
    tunnel.idleTimer = this.deps.clock.after(this.options.idleTimeoutMs, () => {
      tunnel.idleTimer = null;
      void this.decide(tunnel, "idle");
    });
  }

  /**
   * A stop of an idle tunnel: the caches stop leasing it first, since a worker may be handing it to a connection right
   * now. If anything happened meanwhile (a lease, any transition, a pin), the stop is abandoned and the tunnel offered
   * again. Resolves true when the stop went ahead.
   */
  decide(tunnel: Tunnel, reason: StopReason): Promise<boolean> {
    if (tunnel.decision !== null) return tunnel.decision;
    const version = tunnel.version;
    const decision = (async () => {
      try {
        await this.deps.caches.withdraw(tunnel.hostname);
      } catch (error) {
        this.deps.log.warn("lease caches did not withdraw a tunnel", { tunnel: tunnel.hostname, reason: (error as Error).message });
      }
      tunnel.decision = null;
      if (tunnel.version !== version || tunnel.state !== "idle" || tunnel.connections > 0 || tunnel.pinned) {
        this.deps.log.info("tunnel stop abandoned", { tunnel: tunnel.hostname, reason, state: tunnel.state });
        if (isLeasable(tunnel.state)) this.table.offer(tunnel);
        // An idle timer that fired meanwhile joined this stale decision: the idle period runs again.
        if (tunnel.idleTimer === null && tunnel.connections === 0) this.armIdle(tunnel);
        return false;
      }
      this.now(tunnel, reason, true);
      return true;
    })();
    tunnel.decision = decision;
    return decision;
  }

  /**
   * Stops at once, whatever the tunnel does: its start's waiters fail, a process gets SIGTERM (the tunnel is
   * `stopping` until it exits), a failed tunnel is forgotten. Connections still on it are the caller's business.
   */
  now(tunnel: Tunnel, reason: StopReason, withdrawn = false): void {
    if (tunnel.state === "stopping" || tunnel.state === "stopped") return;
    tunnel.cancelTimers();
    const why = new ProxyError("tunnel_stopping", `tunnel ${tunnel.hostname} was stopped (${reason})`);
    const process = tunnel.process;
    if (tunnel.state === "failed" || process === null || !process.running) {
      this.table.change(tunnel, "stopped", { why, withdrawn });
      return;
    }
    this.deps.log.info("tunnel stopping", { tunnel: tunnel.hostname, reason, pid: process.pid });
    this.table.change(tunnel, "stopping", { why, withdrawn });
    process.stop();
  }

  /**
   * Makes room at the cap: stops the least recently used idle, unpinned tunnel (none used within --evict-min-idle); or,
   * when one is already being decided, waits for that decision. Null when there is nothing to stop.
   */
  evictFor(hostname: string): Promise<boolean> | null {
    let victim: Tunnel | undefined;
    const usedSince = this.deps.clock.now() - this.options.evictMinIdleMs;
    for (const tunnel of this.table.all()) {
      if (tunnel.state !== "idle" || tunnel.pinned || tunnel.decision !== null) continue;
      if (this.options.evictMinIdleMs > 0 && tunnel.lastUsed > usedSince) continue;
      if (victim === undefined || tunnel.lastUsed < victim.lastUsed) victim = tunnel;
    }
    if (victim === undefined) return this.table.all().find((tunnel) => tunnel.decision !== null)?.decision ?? null;
    const evicted = victim;
    return this.decide(evicted, "evicted").then((stopped) => {
      if (stopped) this.deps.log.info("tunnel evicted", { tunnel: evicted.hostname, for: hostname });
      return stopped;
    });
  }
}

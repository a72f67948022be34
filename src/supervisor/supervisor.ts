// The tunnel supervisor (DESIGN §2): one shared, reference-counted cloudflared per hostname; starts, idle stops,
// restarts, cooldowns and the --max-tunnels cap. The Launcher runs the processes themselves.
import { ProxyError, isProxyError } from "../errors.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { OutputSignal } from "./output.ts";
import type { PortPool } from "./port-pool.ts";
import { LOGIN_REQUIRED, Launcher } from "./launcher.ts";
import { Lease, Tunnel, type TunnelInfo } from "./tunnel.ts";
import type { Clock } from "../clock.ts";
import type { LeaseHolder, PortProbe, Spawner, TunnelLease, TunnelProvider, TunnelState } from "./types.ts";

export interface SupervisorOptions {
  readonly cloudflaredPath: string;
  readonly cloudflaredArgs: readonly string[];
  readonly idleTimeoutMs: number;
  readonly startupTimeoutMs: number;
  readonly restartBackoffMs: number;
  readonly maxRestarts: number;
  readonly maxTunnels: number;
}

export interface SupervisorDeps {
  readonly clock: Clock;
  readonly spawner: Spawner;
  readonly probe: PortProbe;
  readonly pool: PortPool;
  readonly log: Logger;
  readonly metrics: Metrics;
}

const HEALTHY_RUN_MS = 60_000;
/** A tunnel that lost its last connection this recently when it died was still in use (DESIGN §2 "Crash"). */
const RECENT_USE_MS = 1000;

export class Supervisor implements TunnelProvider {
  private readonly tunnels = new Map<string, Tunnel>();
  private slotsUsed = 0;
  private closing = false;
  private readonly launcher: Launcher;

  constructor(
    private readonly options: SupervisorOptions,
    private readonly deps: SupervisorDeps,
  ) {
    this.launcher = new Launcher(options, deps, {
      onOutput: (tunnel, signal) => this.onOutput(tunnel, signal),
      onExit: (tunnel, pid, how) => this.onExit(tunnel, pid, how),
    });
  }

  async acquire(hostname: string, holder: LeaseHolder): Promise<TunnelLease> {
    for (;;) {
      if (this.closing) throw new ProxyError("tunnel_stopping", "the proxy is shutting down");
      let tunnel = this.tunnels.get(hostname);
      if (tunnel?.state === "failed") {
        if (this.deps.clock.now() < tunnel.cooldownUntil) {
          throw new ProxyError("tunnel_cooldown", `tunnel ${hostname} failed recently (${tunnel.lastError}); refusing until its cooldown ends`);
        }
        this.tunnels.delete(hostname);
        tunnel = undefined;
      }
      if (tunnel === undefined) {
        tunnel = new Tunnel(hostname, this.deps.clock.now());
        this.tunnels.set(hostname, tunnel);
        this.track(tunnel, this.start(tunnel));
      }
      if (tunnel.state === "stopping") await tunnel.exited;
      else if (tunnel.state === "starting") await tunnel.starting;
      else return this.lease(tunnel, holder);
    }
  }

  tryAcquire(hostname: string, holder: LeaseHolder): TunnelLease | null {
    const tunnel = this.tunnels.get(hostname);
    const running = tunnel !== undefined && (tunnel.state === "ready" || tunnel.state === "idle");
    return running && !this.closing ? this.lease(tunnel, holder) : null;
  }

  runningPort(hostname: string): number | null {
    const tunnel = this.tunnels.get(hostname);
    const running = tunnel !== undefined && (tunnel.state === "ready" || tunnel.state === "idle");
    return running ? tunnel.port : null;
  }

  list(): TunnelInfo[] {
    this.forgetExpired();
    return [...this.tunnels.values()].map((tunnel) => tunnel.info());
  }

  countByState(): Map<TunnelState, number> {
    this.forgetExpired();
    const counts = new Map<TunnelState, number>([["starting", 0], ["ready", 0], ["idle", 0], ["stopping", 0], ["failed", 0]]);
    for (const tunnel of this.tunnels.values()) counts.set(tunnel.state, (counts.get(tunnel.state) ?? 0) + 1);
    return counts;
  }

  get running(): number {
    return this.slotsUsed;
  }

  async stopAll(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.tunnels.values()].map((tunnel) => this.stop(tunnel, "shutdown")));
  }

  private track(tunnel: Tunnel, start: Promise<void>): void {
    tunnel.starting = start;
    start.catch(() => undefined);
  }

  private async start(tunnel: Tunnel): Promise<void> {
    try {
      await this.takeSlot(tunnel);
      await this.launcher.spawnUntilReady(tunnel, () => this.closing);
      this.markReady(tunnel);
    } catch (error) {
      this.failStart(tunnel, error);
      throw error;
    }
  }

  private async restart(tunnel: Tunnel, delayMs: number): Promise<void> {
    await new Promise<void>((resolve) => (tunnel.restartTimer = this.deps.clock.after(delayMs, resolve)));
    try {
      await this.launcher.spawnUntilReady(tunnel, () => this.closing);
      this.markReady(tunnel);
    } catch (error) {
      this.failStart(tunnel, error);
      throw error;
    }
  }

  private async takeSlot(tunnel: Tunnel): Promise<void> {
    while (this.slotsUsed >= this.options.maxTunnels) {
      let victim: Tunnel | undefined;
      for (const candidate of this.tunnels.values()) {
        if (candidate.state === "idle" && (victim === undefined || candidate.lastUsed < victim.lastUsed)) victim = candidate;
      }
      if (victim === undefined) {
        throw new ProxyError("tunnel_capacity", `${this.options.maxTunnels} tunnels running and none idle (--max-tunnels)`);
      }
      this.deps.log.info("tunnel evicted", { tunnel: victim.hostname, for: tunnel.hostname });
      await this.stop(victim, "evicted");
    }
    this.slotsUsed++;
    tunnel.holdsSlot = true;
  }

  private freeSlot(tunnel: Tunnel): void {
    if (!tunnel.holdsSlot) return;
    tunnel.holdsSlot = false;
    this.slotsUsed--;
  }

  private markReady(tunnel: Tunnel): void {
    const { clock, metrics, log } = this.deps;
    const now = clock.now();
    tunnel.readyAt = now;
    tunnel.setState(tunnel.connections > 0 ? "ready" : "idle");
    const startupMs = now - (tunnel.startedAt ?? now);
    metrics.tunnelStarts.inc("ok");
    metrics.tunnelStartup.observe(startupMs / 1000);
    log.info("tunnel ready", { tunnel: tunnel.hostname, port: tunnel.port, pid: tunnel.child?.pid, startup_ms: Math.round(startupMs) });
    if (tunnel.state === "idle") this.armIdle(tunnel);
  }

  private failStart(tunnel: Tunnel, error: unknown): void {
    const message = (error as Error).message;
    if (isProxyError(error, "tunnel_capacity") || isProxyError(error, "pool_exhausted") || isProxyError(error, "tunnel_stopping")) {
      this.deps.log.warn("tunnel refused", { tunnel: tunnel.hostname, reason: message });
      this.freeSlot(tunnel);
      if (this.tunnels.get(tunnel.hostname) === tunnel) this.tunnels.delete(tunnel.hostname);
      tunnel.setState("stopped");
      return;
    }
    this.deps.metrics.tunnelStarts.inc("failed");
    this.markFailed(tunnel, message, "tunnel start failed");
  }

  /** Failed: no process, refuse connections until the cooldown ends, close the connections it still carried. */
  private markFailed(tunnel: Tunnel, reason: string, msg: string): void {
    tunnel.cancelTimers();
    tunnel.lastError = reason;
    tunnel.cooldownUntil = this.deps.clock.now() + this.options.restartBackoffMs;
    tunnel.setState("failed");
    this.deps.log.error(msg, { tunnel: tunnel.hostname, reason, cooldown_ms: this.options.restartBackoffMs });
    if (tunnel.child !== null) this.launcher.stopChild(tunnel);
    else this.freeSlot(tunnel);
    for (const holder of [...tunnel.holders]) holder.onTunnelLost(reason);
  }

  /** Output after the start: a login prompt fails the tunnel (DESIGN §2); origin failures are counted. */
  private onOutput(tunnel: Tunnel, signal: OutputSignal): void {
    if (signal.kind === "origin_failure") this.deps.metrics.originFailures.inc();
    if (signal.kind === "login_prompt" && (tunnel.state === "ready" || tunnel.state === "idle")) {
      this.markFailed(tunnel, LOGIN_REQUIRED, "tunnel needs login");
    }
  }

  private onExit(tunnel: Tunnel, pid: number, how: string): void {
    const { clock, log, metrics } = this.deps;
    if (tunnel.stopRequested) {
      tunnel.stopRequested = false;
      log.info("tunnel stopped", { tunnel: tunnel.hostname, pid });
      if (tunnel.state === "stopping") this.remove(tunnel);
      this.freeSlot(tunnel);
      return;
    }
    const now = clock.now();
    if (tunnel.readyAt !== null && now - tunnel.readyAt >= HEALTHY_RUN_MS) tunnel.attempt = 0;
    const inUse = tunnel.connections > 0 || now - tunnel.lastReleaseAt < RECENT_USE_MS;
    log.warn("tunnel exited unexpectedly", { tunnel: tunnel.hostname, pid, exit: how, in_use: inUse });
    if (this.closing || !inUse) {
      this.remove(tunnel);
      this.freeSlot(tunnel);
    } else if (tunnel.attempt >= this.options.maxRestarts) {
      this.markFailed(tunnel, `crashed ${tunnel.attempt + 1} times in a row (--max-restarts ${this.options.maxRestarts})`, "tunnel failed");
    } else {
      tunnel.attempt++;
      tunnel.restarts++;
      metrics.tunnelRestarts.inc();
      const delayMs = this.options.restartBackoffMs * tunnel.attempt;
      tunnel.setState("starting");
      log.info("tunnel restarting", { tunnel: tunnel.hostname, attempt: tunnel.attempt, delay_ms: delayMs });
      this.track(tunnel, this.restart(tunnel, delayMs));
    }
  }

  private remove(tunnel: Tunnel): void {
    tunnel.cancelTimers();
    tunnel.setState("stopped");
    if (this.tunnels.get(tunnel.hostname) === tunnel) this.tunnels.delete(tunnel.hostname);
  }

  private lease(tunnel: Tunnel, holder: LeaseHolder): TunnelLease {
    tunnel.connections++;
    tunnel.idleTimer?.cancel();
    tunnel.idleTimer = null;
    tunnel.setState("ready");
    tunnel.lastUsed = this.deps.clock.now();
    tunnel.holders.add(holder);
    return new Lease(tunnel.port as number, tunnel, holder, this.released);
  }

  /** A lease was released: the last one makes the tunnel idle and starts its idle timer. */
  private readonly released = (tunnel: Tunnel): void => {
    tunnel.connections--;
    tunnel.lastUsed = tunnel.lastReleaseAt = this.deps.clock.now();
    if (tunnel.connections === 0 && tunnel.state === "ready") {
      tunnel.setState("idle");
      this.armIdle(tunnel);
    }
  };

  private armIdle(tunnel: Tunnel): void {
    tunnel.idleTimer?.cancel();
    tunnel.idleTimer = this.deps.clock.after(this.options.idleTimeoutMs, () => {
      tunnel.idleTimer = null;
      if (tunnel.state === "idle" && tunnel.connections === 0) void this.stop(tunnel, "idle");
    });
  }

  private stop(tunnel: Tunnel, reason: string): Promise<void> {
    tunnel.cancelTimers();
    if (tunnel.child === null) {
      if (tunnel.state !== "failed") this.remove(tunnel);
      this.freeSlot(tunnel);
      return Promise.resolve();
    }
    if (tunnel.state !== "failed") tunnel.setState("stopping");
    this.deps.log.info("tunnel stopping", { tunnel: tunnel.hostname, reason, pid: tunnel.child.pid });
    this.launcher.stopChild(tunnel);
    return tunnel.exited;
  }

  private forgetExpired(): void {
    const now = this.deps.clock.now();
    for (const [hostname, tunnel] of this.tunnels) {
      if (tunnel.state === "failed" && tunnel.child === null && now >= tunnel.cooldownUntil) this.tunnels.delete(hostname);
    }
  }
}

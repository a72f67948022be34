// The tunnel supervisor (DESIGN §2, §4): one shared, reference-counted cloudflared per hostname, leased to connections
// and controlled by hand (start, pin, stop). The jobs behind it: table.ts (state changes), starts.ts (starts, crashes,
// cooldowns), stops.ts (idle, eviction, stops), capacity.ts (the cap), launcher.ts and process.ts (the processes).
import type { Clock } from "../clock.ts";
import { ProxyError } from "../errors.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import { Capacity } from "./capacity.ts";
import { Launcher } from "./launcher.ts";
import type { PortPool } from "./port-pool.ts";
import { isLeasable } from "./state.ts";
import { Starts } from "./starts.ts";
import { Stops } from "./stops.ts";
import { TunnelTable } from "./table.ts";
import { Lease, type Tunnel } from "./tunnel.ts";
import type { TunnelProcess } from "./process.ts";
import { TokenBucket } from "../token-bucket.ts";
import type {
  EdgeNotices, LeaseHolder, PortProbe, Spawner, StartResult, TunnelControl, TunnelInfo, TunnelLease, TunnelProvider, TunnelState,
} from "./types.ts";

export interface SupervisorOptions {
  readonly cloudflaredPath: string;
  readonly cloudflaredArgs: readonly string[];
  readonly idleTimeoutMs: number;
  readonly startupTimeoutMs: number;
  readonly restartBackoffMs: number;
  readonly maxRestarts: number;
  readonly maxTunnels: number;
  /** New tunnel processes per second, in bursts of as many (0: unlimited); pinned tunnels and restarts are not refused. */
  readonly tunnelStartRate: number;
  /** At the cap, a tunnel used this recently is not evicted for another hostname (0: any idle one may be). */
  readonly evictMinIdleMs: number;
}

export interface SupervisorDeps {
  readonly clock: Clock;
  readonly spawner: Spawner;
  readonly probe: PortProbe;
  readonly pool: PortPool;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The worker threads' lease caches (DESIGN §5); without workers nothing caches a lease. */
  readonly caches?: EdgeNotices;
}

function isEnding(tunnel: Tunnel): boolean {
  return tunnel.state === "stopping" || tunnel.state === "stopped";
}

const NO_CACHES: EdgeNotices = { offer: () => undefined, withdraw: () => Promise.resolve(), exited: () => undefined };

export class Supervisor implements TunnelProvider, TunnelControl {
  private readonly table: TunnelTable;
  private readonly stops: Stops;
  private readonly starts: Starts;
  private readonly capacity: Capacity;

  private readonly startRate: TokenBucket;

  constructor(
    private readonly options: SupervisorOptions,
    private readonly deps: SupervisorDeps,
  ) {
    this.startRate = new TokenBucket(options.tunnelStartRate, () => deps.clock.now());
    const caches = deps.caches ?? NO_CACHES;
    this.table = new TunnelTable(deps.clock, deps.log, caches);
    this.stops = new Stops(this.table, options, { ...deps, caches });
    this.capacity = new Capacity(options.maxTunnels, (hostname) => this.stops.evictFor(hostname));
    const launcher = new Launcher(options, deps, this.capacity, {
      onOutput: (tunnel, process, signal) => this.starts.onOutput(tunnel, process, signal),
      onExit: (tunnel, process) => this.starts.onExit(tunnel, process),
    });
    this.starts = new Starts(this.table, this.stops, launcher, options, { ...deps, edges: caches });
  }

  async acquire(hostname: string, holder: LeaseHolder): Promise<TunnelLease> {
    for (;;) {
      const tunnel = this.usable(hostname);
      if (isLeasable(tunnel.state)) return this.lease(tunnel, holder);
      await this.settled(tunnel);
    }
  }

  tryAcquire(hostname: string, holder: LeaseHolder): TunnelLease | null {
    const tunnel = this.table.get(hostname);
    return tunnel !== undefined && isLeasable(tunnel.state) && !this.table.closing ? this.lease(tunnel, holder) : null;
  }

  runningPort(hostname: string): number | null {
    const tunnel = this.table.get(hostname);
    return tunnel !== undefined && isLeasable(tunnel.state) ? (tunnel.process?.port ?? null) : null;
  }

  list(): TunnelInfo[] {
    return this.table.all().map((tunnel) => tunnel.info());
  }

  info(hostname: string): TunnelInfo | null {
    return this.table.get(hostname)?.info() ?? null;
  }

  countByState(): Map<TunnelState, number> {
    const counts = new Map<TunnelState, number>([["starting", 0], ["ready", 0], ["idle", 0], ["stopping", 0], ["failed", 0]]);
    for (const tunnel of this.table.all()) counts.set(tunnel.state, (counts.get(tunnel.state) ?? 0) + 1);
    return counts;
  }

  /** Tunnels pinned now (for the tunnels_pinned gauge). */
  pinnedCount(): number {
    return this.table.all().filter((tunnel) => tunnel.pinned).length;
  }

  /** Processes running now, stopping ones included: what --max-tunnels caps. */
  get running(): number {
    return this.capacity.used;
  }

  async start(hostname: string, options: { readonly pin?: boolean } = {}): Promise<StartResult> {
    for (;;) {
      const known = this.table.get(hostname);
      // A failed tunnel pinned now is retried when its cooldown ends: that is the answer, not the cooldown.
      if (options.pin === true && known?.state === "failed" && !this.table.closing) {
        this.pin(known);
        return { kind: "pinned_in_cooldown", info: known.info() };
      }
      const tunnel = this.usable(hostname, options.pin === true);
      if (options.pin === true) this.pin(tunnel);
      if (options.pin === false) this.unpin(tunnel);
      if (isLeasable(tunnel.state)) return { kind: "ready", info: tunnel.info() };
      await this.settled(tunnel);
    }
  }

  async stop(hostname: string, options: { readonly force?: boolean } = {}): Promise<"stopped" | "unknown" | "in_use"> {
    let tunnel = this.table.get(hostname);
    if (tunnel === undefined) return "unknown";
    let process: TunnelProcess | null = null;
    while (tunnel !== undefined && !isEnding(tunnel)) {
      this.unpin(tunnel);
      if (tunnel.state !== "failed" && tunnel.connections > 0) {
        if (options.force !== true) return "in_use";
        for (const holder of [...tunnel.holders]) holder.onTunnelLost("stopped by admin");
      }
      process = tunnel.process;
      if (tunnel.state !== "idle" || options.force === true) {
        this.stops.now(tunnel, "admin");
        break;
      }
      // A decided stop is abandoned when anything happens meanwhile (a lease, a crash): look at the tunnel again.
      if (await this.stops.decide(tunnel, "admin")) break;
      tunnel = this.table.get(hostname);
    }
    if (process !== null && !(await process.gone())) this.stuck([process.pid]);
    return "stopped";
  }

  /** --warm: pins and starts each; a failure is logged by the start and retried by the pinned policy. */
  warm(hostnames: readonly string[]): void {
    for (const hostname of hostnames) void this.start(hostname, { pin: true }).catch(() => undefined);
  }

  /** Stops every tunnel and resolves once every process has exited, or been SIGKILLed and found stuck. */
  async stopAll(): Promise<void> {
    this.table.closing = true;
    for (const tunnel of this.table.all()) this.stops.now(tunnel, "shutdown");
    const processes = this.capacity.processes();
    for (const process of processes) process.stop();
    const gone = await Promise.all(processes.map((process) => process.gone()));
    const stuck = processes.filter((_, i) => !gone[i]).map((process) => process.pid);
    if (stuck.length > 0) this.stuck(stuck);
  }

  /**
   * The tunnel to lease, wait for or start: throws when connections must be refused now. A new tunnel's process counts
   * against --tunnel-start-rate; a pinned one is never refused for it.
   */
  private usable(hostname: string, pinning = false): Tunnel {
    if (this.table.closing) throw new ProxyError("tunnel_stopping", "the proxy is shutting down");
    let tunnel = this.table.get(hostname);
    if (tunnel?.state === "failed") {
      if (this.deps.clock.now() < tunnel.cooldownUntil) {
        throw new ProxyError("tunnel_cooldown", `tunnel ${hostname} failed recently (${tunnel.lastError}); refusing until its cooldown ends`);
      }
      this.starts.cooldownEnded(tunnel);
      tunnel = this.table.get(hostname);
    }
    if (tunnel === undefined) {
      if (pinning) this.startRate.takeIfAny();
      else if (!this.startRate.tryTake()) {
        throw new ProxyError("tunnel_start_rate", `more new tunnels per second than --tunnel-start-rate ${this.options.tunnelStartRate} allows`);
      }
      tunnel = this.table.create(hostname);
      void this.starts.begin(tunnel);
    }
    return tunnel;
  }

  /** Waits for a start to end (rejecting as it fails) or a stop to complete. */
  private async settled(tunnel: Tunnel): Promise<void> {
    if (tunnel.state === "starting") return tunnel.started.promise;
    const process = tunnel.process;
    if (tunnel.state === "stopping" && process !== null && (await process.gone())) return;
    throw new ProxyError("tunnel_stopping", `tunnel ${tunnel.hostname} is still stopping`);
  }

  private pin(tunnel: Tunnel): void {
    if (tunnel.pinned || tunnel.state === "stopping" || tunnel.state === "stopped") return;
    tunnel.pinned = true;
    tunnel.idleTimer?.cancel();
    tunnel.idleTimer = null;
    this.deps.log.info("tunnel pinned", { tunnel: tunnel.hostname });
  }

  /** Unpinned, an idle tunnel is stopped after --idle-timeout like any other. */
  private unpin(tunnel: Tunnel): void {
    if (!tunnel.pinned) return;
    tunnel.pinned = false;
    this.deps.log.info("tunnel unpinned", { tunnel: tunnel.hostname });
    this.stops.armIdle(tunnel);
  }

  private stuck(pids: readonly number[]): void {
    this.deps.log.error("tunnel processes did not exit after SIGKILL", { pids: pids.join(",") });
  }

  private lease(tunnel: Tunnel, holder: LeaseHolder): TunnelLease {
    tunnel.connections++;
    tunnel.idleTimer?.cancel();
    tunnel.idleTimer = null;
    if (tunnel.state === "idle") this.table.change(tunnel, "ready");
    tunnel.lastUsed = this.deps.clock.now();
    tunnel.holders.add(holder);
    return new Lease((tunnel.process as NonNullable<Tunnel["process"]>).port, tunnel, holder, this.released);
  }

  /** A lease was released: the last one makes the tunnel idle and starts its idle timer. */
  private readonly released = (tunnel: Tunnel): void => {
    tunnel.connections--;
    tunnel.lastUsed = tunnel.lastReleaseAt = this.deps.clock.now();
    if (tunnel.connections === 0 && tunnel.state === "ready") {
      this.table.change(tunnel, "idle");
      this.stops.armIdle(tunnel);
    }
  };
}

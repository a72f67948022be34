// The tunnel supervisor: one shared, reference-counted cloudflared per hostname, leased to connections
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
import { TokenBucket } from "../token-bucket.ts";
import { Control } from "./control.ts";
import type {
  EdgeNotices, LeaseHolder, PortProbe, Spawner, TunnelInfo, TunnelLease, TunnelProvider, TunnelState,
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
  /** Secret values cloudflared is given, hidden in its logged output. */
  readonly secrets?: readonly string[];
}

export interface SupervisorDeps {
  readonly clock: Clock;
  readonly spawner: Spawner;
  readonly probe: PortProbe;
  readonly pool: PortPool;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** What the edges are told: tunnels to lease, tunnels to stop leasing, processes that died; without workers, only the last. */
  readonly caches?: EdgeNotices;
}

const NO_CACHES: EdgeNotices = { offer: () => undefined, withdraw: () => Promise.resolve(), exited: () => undefined };

export class Supervisor implements TunnelProvider {
  private readonly table: TunnelTable;
  private readonly stops: Stops;
  private readonly starts: Starts;
  private readonly capacity: Capacity;

  private readonly startRate: TokenBucket;
  /** Tunnel control by hand (the admin API, --warm). */
  readonly control: Control;

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
    this.control = new Control({
      table: this.table,
      stops: this.stops,
      log: deps.log,
      usable: (hostname, pinning) => this.usable(hostname, pinning),
      settled: (tunnel) => this.settled(tunnel),
      stuck: (pids) => this.stuck(pids),
    });
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

  countByState(): Map<TunnelState, number> {
    const counts = new Map<TunnelState, number>([["starting", 0], ["ready", 0], ["idle", 0], ["stopping", 0], ["failed", 0]]);
    for (const tunnel of this.table.all()) counts.set(tunnel.state, (counts.get(tunnel.state) ?? 0) + 1);
    return counts;
  }

  /** The tunnels that listen now and their ports: what an edge worker that (re)starts may lease without asking. */
  leasable(): [hostname: string, port: number][] {
    return this.table.all().flatMap((t) => (isLeasable(t.state) && t.process !== null ? [[t.hostname, t.process.port] as [string, number]] : []));
  }

  /** Tunnels pinned now (for the tunnels_pinned gauge). */
  pinnedCount(): number {
    return this.table.all().filter((tunnel) => tunnel.pinned).length;
  }

  /** Processes running now, stopping ones included: what --max-tunnels caps. */
  get running(): number {
    return this.capacity.used;
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

  private stuck(pids: readonly number[]): void {
    this.deps.log.error("tunnel processes did not exit after SIGKILL", { pids: pids.join(",") });
  }

  /** Waits for a start to end (rejecting as it fails) or a stop to complete. */
  private async settled(tunnel: Tunnel): Promise<void> {
    if (tunnel.state === "starting") return tunnel.started.promise;
    const process = tunnel.process;
    if (tunnel.state === "stopping" && process !== null && (await process.gone())) return;
    throw new ProxyError("tunnel_stopping", `tunnel ${tunnel.hostname} is still stopping`);
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

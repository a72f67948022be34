// One running proxy: the supervisor, the edges (this thread's and the workers'), cancel routing, the fleet, the admin
// server and its status page, wired together; started once, and stopped once through a drain (shutdown) or, when it
// could not start, at once (abort).
import type { Server } from "bun";
import type { Config } from "./config/load.ts";
import { after, realClock } from "./clock.ts";
import { formatDuration } from "./config/duration.ts";
import type { Logger } from "./ops/log.ts";
import { Metrics } from "./ops/metrics.ts";
import { serveAdmin } from "./ops/admin-setup.ts";
import { defaultNodeId, type StatusReporter } from "./ops/status.ts";
import { addProxyReadings } from "./ops/readings.ts";
import { EdgeHub } from "./edge/hub.ts";
import { EdgeListener } from "./edge/listener.ts";
import { CancelRouter, type ReceivedCancel } from "./edge/cancel-router.ts";
import { runningTargets } from "./edge/clients.ts";
import { AddressCounts, SharedCounter } from "./edge/limits.ts";
import type { Fleet } from "./fleet/fleet.ts";
import { joinFleet } from "./fleet-member.ts";
import { PortPool } from "./supervisor/port-pool.ts";
import { Supervisor } from "./supervisor/supervisor.ts";
import { bunSpawner } from "./supervisor/spawner.ts";
import { procNetProbe } from "./supervisor/proc-net.ts";
import { ListenFailure } from "./ops/listen-problem.ts";
import type { ListenAddress } from "./config/listen.ts";

/** A drain that has not completed this long after its deadline is a bug: exit rather than hang forever. */
const SHUTDOWN_GRACE_MS = 10_000;
export const EXIT_SHUTDOWN_STUCK = 3;

export interface ProxyOptions {
  readonly setpriv: string | null;
  /** The module a worker thread runs (the program's entry point). */
  readonly entry: URL;
  /** Test fault injection: each edge worker's first incarnation throws this long after it listens. */
  readonly crashWorkerAfterMs?: number;
}

export class Proxy {
  readonly metrics = new Metrics();
  private readonly total = new SharedCounter();
  private readonly supervisor: Supervisor;
  private readonly edge: EdgeListener;
  private readonly hub: EdgeHub | null = null;
  private fleet: Fleet | null = null;
  private admin: Server<undefined> | null = null;
  private status: StatusReporter | null = null;
  private draining = false;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    options: ProxyOptions,
  ) {
    const perAddress = new AddressCounts(config.maxConnsPerIp);
    this.supervisor = new Supervisor(config, {
      clock: realClock,
      spawner: bunSpawner({ setpriv: options.setpriv }),
      probe: procNetProbe(),
      pool: new PortPool(config.portRange.start, config.portRange.end),
      log,
      metrics: this.metrics,
      caches: {
        offer: (name, port) => this.hub?.offer(name, port),
        withdraw: (name) => this.hub?.withdraw(name) ?? Promise.resolve(),
        exited: (name, reason) => {
          this.edge.tunnelExited(name, reason);
          this.hub?.exited(name, reason);
        },
      },
    });
    const cancels = new CancelRouter({ rate: config.cancelRate, now: realClock.now, targets: (c) => this.cancelTargets(c), relay: (c) => this.relay(c) });
    const routeCancel = (cancel: ReceivedCancel) => cancels.route(cancel);
    const { total, metrics, supervisor } = this;
    this.edge = new EdgeListener(config, { tunnels: supervisor, log, metrics, total, perAddress, index: 0, routeCancel });
    if (config.workers > 1) {
      this.hub = new EdgeHub({
        config, tunnels: supervisor, perAddress, total, log, routeCancel, entry: options.entry,
        ready: () => supervisor.leasable(),
        recentHere: (address) => this.edge.clients.recent(address),
        ...(options.crashWorkerAfterMs === undefined ? {} : { crashWorkerAfterMs: options.crashWorkerAfterMs }),
      });
    }
  }

  /** Edges accepting clients now: this thread's unless draining, and each worker that listens. */
  get edgesUp(): number {
    return (this.draining ? 0 : 1) + (this.hub?.listening ?? 0);
  }

  /** Binds the client listener (every edge) and the admin server; throws a ListenFailure when one cannot be bound. */
  async start(): Promise<number> {
    const { config, log } = this;
    let port: number;
    try {
      this.checkPortFree();
      port = this.edge.start();
      await this.hub?.start(port);
    } catch (error) {
      throw new ListenFailure(config.listen.text, error);
    }
    log.info("listening", { listen: config.listen.text, port, workers: config.workers });
    const nodeId = config.nodeId ?? defaultNodeId(port);
    if (config.fleetRedis !== null) {
      const tunnels = () => this.supervisor.list();
      this.fleet = joinFleet(config.fleetRedis, { config, log, nodeId, port, tunnels, targets: (c) => this.cancelTargets(c), slots: this.edge.forwardSlots });
    }
    addProxyReadings(this.metrics, {
      active: () => this.total.value,
      tunnels: this.supervisor,
      draining: () => this.draining,
      edgesUp: () => this.edgesUp,
      workers: config.workers,
      fleet: this.fleet,
    });
    if (config.metricsListen !== null) this.startAdmin(config.metricsListen, nodeId);
    this.supervisor.control.warm(config.warm);
    return port;
  }

  private startAdmin(address: ListenAddress, nodeId: string): void {
    const { config, supervisor, hub, fleet } = this;
    const started = serveAdmin(address, {
      config,
      log: this.log,
      metrics: this.metrics,
      snapshots: () => hub?.snapshots() ?? Promise.resolve([]),
      tunnels: () => supervisor.list(),
      control: supervisor.control,
      nodeId,
      draining: () => this.draining,
      edgesUp: () => this.edgesUp,
      connections: () => this.total.value,
      unhealthy: () => this.unhealthy(),
      ...(fleet === null ? {} : { fleet: () => fleet.members() }),
    });
    this.admin = started.server;
    this.status = started.status;
  }

  /** Without --reuse-port, several edges share the port among themselves only: refuse one another process holds. */
  private checkPortFree(): void {
    const { listen, workers, reusePort } = this.config;
    if (workers === 1 || reusePort || listen.port === 0) return;
    Bun.listen({ hostname: listen.host, port: listen.port, exclusive: true, socket: { data() {} } }).stop(true);
  }

  private unhealthy(): string | null {
    if (this.draining) return "draining";
    const up = this.edgesUp;
    return up < this.config.workers ? `degraded: ${up} of ${this.config.workers} edges accepting` : null;
  }

  private cancelTargets(client: string): Promise<number[]> {
    if (this.hub !== null) return this.hub.cancelTargets(client);
    return Promise.resolve(runningTargets(this.edge.clients.recent(client), this.supervisor, this.config.cancelFanout));
  }

  /** Hands a cancel to the fleet: true when it went out (the fleet is connected). */
  private relay(cancel: ReceivedCancel): boolean {
    if (this.fleet === null || !this.fleet.up) return false;
    this.fleet.publish(cancel);
    return true;
  }

  /** Could not start: whatever did start stops now, tunnels a client may already have started included. */
  async abort(): Promise<void> {
    this.draining = true;
    this.edge.stopAccepting();
    this.edge.closeAll("the proxy could not start");
    await this.hub?.terminate();
    await this.fleet?.stop();
    this.status?.stop();
    await this.supervisor.stopAll();
    this.admin?.stop(true);
  }

  /**
   * SIGTERM/SIGINT: stop accepting, let open connections finish for --drain-timeout, close the rest, stop every
   * tunnel, exit 0. A second signal closes every connection at once. Resolves with the exit status.
   */
  shutdown(signal: string): Promise<number> {
    const { config, log } = this;
    if (this.draining) {
      log.warn("second signal: closing every connection now", { signal });
      this.closeAll("second signal");
      return new Promise(() => undefined);
    }
    this.draining = true;
    this.edge.stopAccepting();
    log.info("draining", { signal, connections: this.total.value, drain_timeout: formatDuration(config.drainTimeoutMs) });
    const leaving = this.fleet?.leave();
    const deadline = after(config.drainTimeoutMs, () => {
      log.warn("drain timeout: closing the remaining connections", { connections: this.total.value });
      this.closeAll("drain timeout");
    });
    return new Promise((resolve) => {
      const stuck = after(config.drainTimeoutMs + SHUTDOWN_GRACE_MS, () => {
        log.error("bug: shutdown did not complete; exiting anyway", { connections: this.total.value });
        resolve(EXIT_SHUTDOWN_STUCK);
      });
      void (async () => {
        await Promise.all([this.edge.whenEmpty(), this.hub?.drain()]);
        deadline.cancel();
        this.edge.flushHeld();
        await this.supervisor.stopAll();
        await Promise.all([this.admin?.stop(true), this.hub?.terminate(), leaving?.then(() => this.fleet?.stop())]);
        this.status?.stop();
        stuck.cancel();
        log.info("stopped");
        resolve(0);
      })();
    });
  }

  private closeAll(reason: string): void {
    this.edge.closeAll(reason);
    this.hub?.closeAll(reason);
  }
}

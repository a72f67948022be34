// The main thread's side of the edge workers: starts them and restarts one that dies (with backoff), answers their
// lease, limit and cancel questions from the one supervisor and the one per-address count, and is how the supervisor
// offers ready tunnels to their caches, withdraws them before a stop, and announces a tunnel process's exit.
import { Worker } from "node:worker_threads";
import { isProxyError } from "../errors.ts";
import { runningTargets, type RecentTunnel } from "./clients.ts";
import type { AddressCounts, SharedCounter } from "./limits.ts";
import type { CancelRoute, ReceivedCancel } from "./cancel-router.ts";
import { Link, Rounds } from "./hub-link.ts";
import type { ToMain, WorkerSetup } from "./messages.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../ops/log.ts";
import type { MetricsSnapshot } from "../ops/metrics.ts";
import { sumSnapshots } from "../ops/metric-families.ts";
import type { EdgeNotices, TunnelProvider } from "../supervisor/types.ts";

export interface HubDeps {
  readonly config: Config;
  readonly tunnels: TunnelProvider;
  /** The tunnels that listen now, offered to a worker that (re)starts. */
  readonly ready: () => readonly (readonly [hostname: string, port: number])[];
  readonly perAddress: AddressCounts;
  readonly total: SharedCounter;
  readonly log: Logger;
  /** Cancel routing for every edge (main thread). */
  readonly routeCancel: (cancel: ReceivedCancel) => Promise<CancelRoute>;
  /** The main thread's own edge registry (edge 0). */
  readonly recentHere: (address: string) => RecentTunnel[];
  /** The module that runs a worker when loaded off the main thread (the program's entry point). */
  readonly entry: URL;
  /** Test fault injection: each worker's first incarnation throws this long after it listens. */
  readonly crashWorkerAfterMs?: number;
}

/** A dead worker is restarted after this, doubling with each death in a row up to RESTART_MAX_MS. */
const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 5000;
/** A worker that ran this long before it died starts the backoff afresh. */
const HEALTHY_RUN_MS = 60_000;

export class EdgeHub implements EdgeNotices {
  private readonly links = new Map<number, Link>();
  private readonly rounds: Rounds;
  /** The counters of every worker that died, added up, so /metrics never goes backwards. */
  private retired: MetricsSnapshot | null = null;
  private readonly deathsInARow = new Map<number, number>();
  private readonly restarts = new Map<number, ReturnType<typeof setTimeout>>();
  private port = 0;
  private stopping = false;

  constructor(private readonly deps: HubDeps) {
    this.rounds = new Rounds((question, missing) => deps.log.error("bug: edge workers did not answer", { question, missing }));
  }

  /** Starts workers 1..N-1 on `port`; resolves once each listens, rejects with the reason one could not. */
  async start(port: number): Promise<void> {
    this.port = port;
    await Promise.all(Array.from({ length: this.deps.config.workers - 1 }, (_, i) => this.spawn(i + 1, 0)));
  }

  /** Worker threads accepting clients now. */
  get listening(): number {
    return [...this.links.values()].filter((link) => link.listening).length;
  }

  private spawn(index: number, generation: number): Promise<void> {
    const { adminToken: _token, secrets: _secrets, ...shared } = this.deps.config;
    const crashAfterMs = generation === 0 ? this.deps.crashWorkerAfterMs : undefined;
    const setup: WorkerSetup = { config: shared, index, total: this.deps.total.buffer, port: this.port, ...(crashAfterMs === undefined ? {} : { crashAfterMs }) };
    const link = new Link(index, new Worker(this.deps.entry, { workerData: setup }));
    this.links.set(index, link);
    link.worker.on("exit", (code) => this.onExit(link, code));
    return new Promise((resolve, reject) => {
      link.worker.on("message", (message: ToMain) => {
        if (message.t === "listening") {
          link.listening = true;
          for (const [hostname, port] of this.deps.ready()) link.post({ t: "offer", hostname, port });
          resolve();
        } else if (message.t === "bindFailed") reject(new Error(message.reason));
        else this.onMessage(link, message);
      });
      link.worker.on("error", (error) => reject(error));
    });
  }

  offer(hostname: string, port: number): void {
    for (const link of this.links.values()) link.post({ t: "offer", hostname, port });
  }

  withdraw(hostname: string): Promise<void> {
    return this.rounds.ask([...this.links.values()], (seq) => ({ t: "withdraw", hostname, seq })).then(() => undefined);
  }

  exited(hostname: string, reason: string): void {
    for (const link of this.links.values()) link.post({ t: "exited", hostname, reason });
  }

  /** Cancel affinity across every edge: the client's tunnels from all registries, newest first, running ones only. */
  async cancelTargets(address: string): Promise<number[]> {
    const theirs = (await this.rounds.ask([...this.links.values()], (q) => ({ t: "recent?", q, address }))) as RecentTunnel[][];
    const merged = [...this.deps.recentHere(address), ...theirs.flat()].sort((a, b) => b.at - a.at);
    return runningTargets(merged, this.deps.tunnels, this.deps.config.cancelFanout);
  }

  /** Every worker's counters, for /metrics, the ones of workers that died included. */
  async snapshots(): Promise<MetricsSnapshot[]> {
    const live = (await this.rounds.ask([...this.links.values()], (q) => ({ t: "metrics?", q }))) as MetricsSnapshot[];
    return this.retired === null ? live : [...live, this.retired];
  }

  /** Workers stop accepting and resolve once their connections are gone; none is restarted from now on. */
  drain(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restarts.values()) clearTimeout(timer);
    return Promise.all([...this.links.values()].map((link) => (link.drained ??= new Promise<void>((resolve) => {
      link.worker.on("message", (message: ToMain) => message.t === "drained" && resolve());
      link.worker.once("exit", () => resolve());
      link.post({ t: "drain" });
    })))).then(() => undefined);
  }

  closeAll(reason: string): void {
    for (const link of this.links.values()) link.post({ t: "closeAll", reason });
  }

  async terminate(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restarts.values()) clearTimeout(timer);
    await Promise.all([...this.links.values()].map((link) => link.worker.terminate()));
  }

  private onMessage(link: Link, message: ToMain): void {
    switch (message.t) {
      case "acquire":
        return this.acquire(link, message.id, message.hostname);
      case "lease":
        return this.leaseWarm(link, message.id, message.hostname, message.port);
      case "release":
        link.leases.get(message.id)?.release();
        link.leases.delete(message.id);
        return;
      case "withdrawn":
        return this.rounds.answer(message.seq, link);
      case "admit":
        return link.post({ t: "verdict", id: message.id, allowed: this.deps.perAddress.admit(message.id, message.address) });
      case "forget":
        return this.deps.perAddress.release(message.id);
      case "cancel":
        return void this.deps.routeCancel(message.cancel).then((route) => link.post({ t: "cancelRoute", q: message.q, route }));
      case "recent":
        return this.rounds.answer(message.q, link, message.tunnels);
      case "metrics":
        return this.rounds.answer(message.q, link, message.snapshot);
      case "dying":
        this.retired = this.retired === null ? message.snapshot : sumSnapshots(this.retired, message.snapshot);
        return this.deps.log.error("bug: edge worker failed", { worker: link.index, error: message.error });
      default:
        return;
    }
  }

  private holder(link: Link, id: number) {
    return { onTunnelLost: (reason: string) => link.post({ t: "lost", id, reason }) };
  }

  private acquire(link: Link, id: number, hostname: string): void {
    this.deps.tunnels.acquire(hostname, this.holder(link, id)).then(
      (lease) => {
        if (this.links.get(link.index) !== link) return lease.release();
        link.leases.set(id, lease);
        link.post({ t: "leased", id, port: lease.port });
      },
      (error: Error) => link.post({ t: "refused", id, code: isProxyError(error) ? error.code : "tunnel_start_failed", message: error.message }),
    );
  }

  /** A lease made from a worker's cache: it stands unless the supervisor no longer runs that tunnel on that port. */
  private leaseWarm(link: Link, id: number, hostname: string, port: number): void {
    const lease = this.deps.tunnels.tryAcquire(hostname, this.holder(link, id));
    if (lease !== null && lease.port === port) {
      link.leases.set(id, lease);
      return;
    }
    lease?.release();
    link.post({ t: "lost", id, reason: `tunnel ${hostname} stopped as the connection leased it` });
  }

  /** A worker that exits gives back everything its connections held; one that died is started again. */
  private onExit(link: Link, code: number): void {
    if (this.links.get(link.index) !== link) return;
    this.links.delete(link.index);
    for (const lease of link.leases.values()) lease.release();
    link.leases.clear();
    this.deps.perAddress.forgetEdge(link.index);
    this.deps.total.forget(link.index);
    this.rounds.forget(link);
    if (this.stopping) return;
    const ranMs = performance.now() - link.startedAt;
    const deaths = ranMs >= HEALTHY_RUN_MS ? 1 : (this.deathsInARow.get(link.index) ?? 0) + 1;
    this.deathsInARow.set(link.index, deaths);
    const delayMs = Math.min(RESTART_FIRST_MS * 2 ** (deaths - 1), RESTART_MAX_MS);
    this.deps.log.error("bug: edge worker exited; its connections are gone, restarting it", { worker: link.index, exit_code: code, restart_in_ms: delayMs });
    this.restarts.set(link.index, setTimeout(() => this.restart(link.index, deaths), delayMs));
  }

  private restart(index: number, generation: number): void {
    this.restarts.delete(index);
    if (this.stopping) return;
    this.spawn(index, generation).then(
      () => this.deps.log.info("edge worker restarted", { worker: index }),
      (error: Error) => this.deps.log.error("edge worker could not restart", { worker: index, reason: error.message }),
    );
  }
}

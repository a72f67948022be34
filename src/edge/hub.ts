// The main thread's side of the edge workers (DESIGN §5): starts them, answers their lease, limit and cancel
// questions from the one supervisor and the one per-address count, and is the EdgeNotices the supervisor offers
// ready tunnels to and withdraws them from before it stops one.
import { Worker } from "node:worker_threads";
import { isProxyError } from "../errors.ts";
import { runningTargets, type RecentTunnel } from "./clients.ts";
import type { AddressCounts, SharedCounter } from "./limits.ts";
import type { CancelRoute, ReceivedCancel } from "./cancel-router.ts";
import type { ToMain, ToWorker, WorkerSetup } from "./messages.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../ops/log.ts";
import type { MetricsSnapshot } from "../ops/metrics.ts";
import type { EdgeNotices, TunnelLease, TunnelProvider } from "../supervisor/types.ts";

export interface HubDeps {
  readonly config: Config;
  readonly tunnels: TunnelProvider;
  readonly perAddress: AddressCounts;
  readonly total: SharedCounter;
  readonly log: Logger;
  /** Cancel routing for every edge (main thread). */
  readonly routeCancel: (cancel: ReceivedCancel) => Promise<CancelRoute>;
  /** The main thread's own edge registry (edge 0). */
  readonly recentHere: (address: string) => RecentTunnel[];
  /** The module that runs a worker when loaded off the main thread (the program's entry point). */
  readonly entry: URL;
}

/** One worker and the leases the supervisor holds for its connections. */
class Link {
  readonly leases = new Map<number, TunnelLease>();
  drained: Promise<void> | null = null;

  constructor(
    readonly index: number,
    readonly worker: Worker,
  ) {}

  post(message: ToWorker): void {
    this.worker.postMessage(message);
  }
}

/** A question put to every worker: done when each has answered, has exited, or the deadline has passed. */
type Round = { waiting: Set<Link>; items: unknown[]; done: (items: unknown[]) => void; timer: ReturnType<typeof setTimeout> };

/** A worker that has not answered by then is stuck (a bug); a scrape, a cancel or a stop goes on without it. */
const ROUND_DEADLINE_MS = 2000;

export class EdgeHub implements EdgeNotices {
  private readonly links: Link[] = [];
  private readonly rounds = new Map<number, Round>();
  private nextSeq = 0;
  private terminating = false;

  constructor(private readonly deps: HubDeps) {}

  /** Starts workers 1..N-1 on `port`; resolves once each listens, rejects with the reason one could not. */
  async start(port: number): Promise<void> {
    const { config } = this.deps;
    const { adminToken: _secret, ...shared } = config;
    const started: Promise<void>[] = [];
    for (let index = 1; index < config.workers; index++) {
      const setup: WorkerSetup = { config: shared, index, total: this.deps.total.buffer, port };
      const link = new Link(index, new Worker(this.deps.entry, { workerData: setup }));
      this.links.push(link);
      started.push(new Promise((resolve, reject) => {
        link.worker.on("message", (message: ToMain) => {
          if (message.t === "listening") resolve();
          else if (message.t === "bindFailed") reject(new Error(message.reason));
          else this.onMessage(link, message);
        });
        link.worker.on("error", (error) => reject(error));
      }));
      link.worker.on("exit", () => this.onExit(link));
    }
    await Promise.all(started);
  }

  offer(hostname: string, port: number): void {
    for (const link of this.links) link.post({ t: "offer", hostname, port });
  }

  exited(hostname: string, reason: string): void {
    for (const link of this.links) link.post({ t: "exited", hostname, reason });
  }

  withdraw(hostname: string): Promise<void> {
    return this.ask((seq) => ({ t: "withdraw", hostname, seq })).then(() => undefined);
  }

  /** Cancel affinity across every edge: the client's tunnels from all registries, newest first, running ones only. */
  async cancelTargets(address: string): Promise<number[]> {
    const theirs = (await this.ask((q) => ({ t: "recent?", q, address }))) as RecentTunnel[][];
    const merged = [...this.deps.recentHere(address), ...theirs.flat()].sort((a, b) => b.at - a.at);
    return runningTargets(merged, this.deps.tunnels, this.deps.config.cancelFanout);
  }

  /** Every worker's counters, for /metrics. */
  snapshots(): Promise<MetricsSnapshot[]> {
    return this.ask((q) => ({ t: "metrics?", q })) as Promise<MetricsSnapshot[]>;
  }

  /** Workers stop accepting and resolve once their connections are gone. */
  drain(): Promise<void> {
    return Promise.all(this.links.map((link) => (link.drained ??= new Promise<void>((resolve) => {
      link.worker.on("message", (message: ToMain) => message.t === "drained" && resolve());
      link.worker.once("exit", () => resolve());
      link.post({ t: "drain" });
    })))).then(() => undefined);
  }

  closeAll(reason: string): void {
    for (const link of this.links) link.post({ t: "closeAll", reason });
  }

  async terminate(): Promise<void> {
    this.terminating = true;
    await Promise.all(this.links.map((link) => link.worker.terminate()));
  }

  private ask(question: (q: number) => ToWorker): Promise<unknown[]> {
    if (this.links.length === 0) return Promise.resolve([]);
    const q = ++this.nextSeq;
    return new Promise((done) => {
      const timer = setTimeout(() => {
        this.deps.log.error("bug: edge workers did not answer", { question: question(q).t, missing: this.rounds.get(q)?.waiting.size });
        this.finish(q);
      }, ROUND_DEADLINE_MS);
      this.rounds.set(q, { waiting: new Set(this.links), items: [], done, timer });
      for (const link of this.links) link.post(question(q));
    });
  }

  /** `link`'s answer to round `q` (none when it exited). */
  private answer(q: number, link: Link, item?: unknown): void {
    const round = this.rounds.get(q);
    if (round === undefined || !round.waiting.delete(link)) return;
    if (item !== undefined) round.items.push(item);
    if (round.waiting.size === 0) this.finish(q);
  }

  private finish(q: number): void {
    const round = this.rounds.get(q);
    if (round === undefined) return;
    this.rounds.delete(q);
    clearTimeout(round.timer);
    round.done(round.items);
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
        return this.answer(message.seq, link);
      case "admit":
        return link.post({ t: "verdict", id: message.id, allowed: this.deps.perAddress.admit(message.id, message.address) });
      case "forget":
        return this.deps.perAddress.release(message.id);
      case "cancel":
        return void this.deps.routeCancel(message.cancel).then((route) => link.post({ t: "cancelRoute", q: message.q, route }));
      case "recent":
        return this.answer(message.q, link, message.tunnels);
      case "metrics":
        return this.answer(message.q, link, message.snapshot);
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
        if (!this.links.includes(link)) return lease.release();
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

  /** A worker that exits gives back everything its connections held (it only exits on its own if it crashed). */
  private onExit(link: Link): void {
    if (!this.terminating) this.deps.log.error("bug: edge worker exited; its connections are gone", { worker: link.index });
    for (const lease of link.leases.values()) lease.release();
    link.leases.clear();
    this.deps.perAddress.forgetEdge(link.index);
    this.deps.total.forget(link.index);
    const at = this.links.indexOf(link);
    if (at >= 0) this.links.splice(at, 1);
    for (const q of [...this.rounds.keys()]) this.answer(q, link);
  }
}

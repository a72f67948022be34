// The main thread as an edge worker sees it: tunnels leased from a cache of ready ones or asked for by message,
// per-address verdicts and cancel routes answered by message.
import type { Maybe } from "./context.ts";
import type { PerAddressLimit } from "./limits.ts";
import type { ToMain } from "./messages.ts";
import type { LeaseHolder, TunnelLease, TunnelProvider } from "../supervisor/types.ts";

type Post = (message: ToMain) => void;

class RemoteLease implements TunnelLease {
  constructor(
    readonly port: number,
    private readonly id: number,
    private readonly tunnels: RemoteTunnels,
  ) {}

  release(): void {
    this.tunnels.release(this.id);
  }
}

export class RemoteTunnels implements TunnelProvider {
  /** Ready tunnels the supervisor offered: leased here without a round trip until it withdraws them. */
  private readonly ready = new Map<string, number>();
  private readonly holders = new Map<number, LeaseHolder>();
  private readonly waiting = new Map<number, { holder: LeaseHolder; resolve: (lease: TunnelLease) => void; reject: (error: Error) => void }>();
  private nextId = 0;

  constructor(private readonly post: Post) {}

  tryAcquire(hostname: string, holder: LeaseHolder): TunnelLease | null {
    const port = this.ready.get(hostname);
    if (port === undefined) return null;
    const id = ++this.nextId;
    this.holders.set(id, holder);
    this.post({ t: "lease", id, hostname, port });
    return new RemoteLease(port, id, this);
  }

  acquire(hostname: string, holder: LeaseHolder): Promise<TunnelLease> {
    const id = ++this.nextId;
    this.post({ t: "acquire", id, hostname });
    return new Promise((resolve, reject) => this.waiting.set(id, { holder, resolve, reject }));
  }

  runningPort(hostname: string): number | null {
    return this.ready.get(hostname) ?? null;
  }

  release(id: number): void {
    if (this.holders.delete(id)) this.post({ t: "release", id });
  }

  onLeased(id: number, port: number): void {
    const waiter = this.waiting.get(id);
    if (waiter === undefined) return;
    this.waiting.delete(id);
    this.holders.set(id, waiter.holder);
    waiter.resolve(new RemoteLease(port, id, this));
  }

  onRefused(id: number, error: Error): void {
    this.waiting.get(id)?.reject(error);
    this.waiting.delete(id);
  }

  onLost(id: number, reason: string): void {
    this.holders.get(id)?.onTunnelLost(reason);
  }

  offer(hostname: string, port: number): void {
    this.ready.set(hostname, port);
  }

  withdraw(hostname: string): void {
    this.ready.delete(hostname);
  }
}

/** Replies awaited from the main thread, by a key unique among the outstanding ones. */
export class Replies<T> {
  private readonly waiting = new Map<number, (value: T) => void>();

  wait(key: number): Promise<T> {
    return new Promise((resolve) => this.waiting.set(key, resolve));
  }

  settle(key: number, value: T): void {
    this.waiting.get(key)?.(value);
    this.waiting.delete(key);
  }
}

/** --max-conns-per-ip decided in the main thread, where every edge's connections are counted. */
export class RemotePerAddress implements PerAddressLimit {
  private readonly verdicts = new Replies<boolean>();

  constructor(private readonly post: Post) {}

  admit(owner: number, address: string): Maybe<boolean> {
    this.post({ t: "admit", id: owner, address });
    return this.verdicts.wait(owner);
  }

  release(owner: number): void {
    this.post({ t: "forget", id: owner });
  }

  onVerdict(owner: number, allowed: boolean): void {
    this.verdicts.settle(owner, allowed);
  }
}

// One tunnel's record: its explicit state, process, port, connections and history; transitions go through setState.
import type { Timer } from "../clock.ts";
import type { ChildHandle, LeaseHolder, TunnelLease, TunnelState } from "./types.ts";
import type { StartWaiter } from "./readiness.ts";

export interface TunnelInfo {
  readonly hostname: string;
  readonly port: number | null;
  readonly pid: number | null;
  readonly state: TunnelState;
  readonly connections: number;
  readonly started_at: string | null;
  readonly last_used: string;
  readonly restarts: number;
  readonly last_error: string | null;
}

export class Tunnel {
  state: TunnelState = "starting";
  port: number | null = null;
  child: ChildHandle | null = null;
  /** Settles when the current child has exited. */
  exited: Promise<void> = Promise.resolve();
  /** The start (or restart) in progress, shared by every connection that waits for it. */
  starting: Promise<void> = Promise.resolve();
  waiter: StartWaiter | null = null;
  connections = 0;
  startedAt: number | null = null;
  readyAt: number | null = null;
  lastUsed: number;
  lastReleaseAt = Number.NEGATIVE_INFINITY;
  restarts = 0;
  /** Restarts in a row; reset after a healthy minute. */
  attempt = 0;
  lastError: string | null = null;
  cooldownUntil = 0;
  holdsSlot = false;
  stopRequested = false;
  idleTimer: Timer | null = null;
  restartTimer: Timer | null = null;
  killTimer: Timer | null = null;
  readonly holders = new Set<LeaseHolder>();

  constructor(
    readonly hostname: string,
    now: number,
  ) {
    this.lastUsed = now;
  }

  setState(next: TunnelState): TunnelState {
    const previous = this.state;
    this.state = next;
    return previous;
  }

  cancelTimers(): void {
    this.idleTimer?.cancel();
    this.restartTimer?.cancel();
    this.idleTimer = null;
    this.restartTimer = null;
  }

  info(): TunnelInfo {
    return {
      hostname: this.hostname,
      port: this.child === null ? null : this.port,
      pid: this.child?.pid ?? null,
      state: this.state,
      connections: this.connections,
      started_at: this.startedAt === null ? null : new Date(this.startedAt).toISOString(),
      last_used: new Date(this.lastUsed).toISOString(),
      restarts: this.restarts,
      last_error: this.lastError,
    };
  }
}

/** One connection's hold on a tunnel; a plain object rather than closures, as thousands stay open at once. */
export class Lease implements TunnelLease {
  private released = false;

  constructor(
    readonly port: number,
    private readonly tunnel: Tunnel,
    private readonly holder: LeaseHolder,
    private readonly onRelease: (tunnel: Tunnel) => void,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.tunnel.holders.delete(this.holder);
    this.onRelease(this.tunnel);
  }
}

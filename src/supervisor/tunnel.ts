// One tunnel's record: its explicit state, current process, pin, connections, timers and history; and its leases.
import type { Timer } from "../clock.ts";
import type { TunnelProcess } from "./process.ts";
import type { LeaseHolder, TunnelInfo, TunnelLease, TunnelState } from "./types.ts";

export type { TunnelInfo } from "./types.ts";

/** A promise with its settle functions, for the waiters of a start. */
export class Deferred {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (reason: Error) => void;

  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A start nobody waits for may still fail; that is not an unhandled rejection.
    this.promise.catch(() => undefined);
  }
}

export class Tunnel {
  /** Written only by transition() (state.ts), which checks the move against the table of legal transitions. */
  state: TunnelState = "starting";
  /** Bumped by every transition: a decision taken across an await checks that nothing happened meanwhile. */
  version = 0;
  /** The process serving this tunnel now; a process it let go of (a port retry) is not here. */
  process: TunnelProcess | null = null;
  /** Settles when the tunnel leaves `starting`: resolved once it listens, rejected with the reason otherwise. */
  started = new Deferred();
  /** The stop decided for it, while the lease caches withdraw it. */
  decision: Promise<boolean> | null = null;
  pinned = false;
  connections = 0;
  readonly holders = new Set<LeaseHolder>();
  startedAt: number | null = null;
  readyAt: number | null = null;
  lastUsed: number;
  lastReleaseAt = Number.NEGATIVE_INFINITY;
  restarts = 0;
  /** Restarts in a row; reset after a healthy minute. */
  attempt = 0;
  /** Failed starts in a row while pinned: each doubles the wait before the next try. */
  pinnedFailures = 0;
  lastError: string | null = null;
  cooldownUntil = 0;
  idleTimer: Timer | null = null;
  restartTimer: Timer | null = null;
  cooldownTimer: Timer | null = null;

  constructor(
    readonly hostname: string,
    now: number,
  ) {
    this.lastUsed = now;
  }

  cancelTimers(): void {
    this.idleTimer?.cancel();
    this.restartTimer?.cancel();
    this.cooldownTimer?.cancel();
    this.idleTimer = this.restartTimer = this.cooldownTimer = null;
  }

  info(): TunnelInfo {
    return {
      hostname: this.hostname,
      port: this.process?.port ?? null,
      pid: this.process?.pid ?? null,
      state: this.state,
      pinned: this.pinned,
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

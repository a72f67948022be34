// One cloudflared process as the supervisor holds it: its port and its --max-tunnels slot, both taken at spawn and
// given back exactly once, when this very process has exited; stopping it is SIGTERM, then SIGKILL 5 s later.
import type { Clock, Timer } from "../clock.ts";
import type { StartWaiter } from "./readiness.ts";
import type { ChildHandle } from "./types.ts";

/**
 * cloudflared 2023.5.0 dies from SIGTERM within milliseconds, silently, a normal stop (measured here idle, mid-session
 * and after a refused login); this leaves room for a slower one. Anything still there after it gets SIGKILL.
 */
export const KILL_AFTER_MS = 5000;
/** Past the SIGKILL, how long a stop waits before calling the process stuck (uninterruptible sleep, a broken kernel). */
export const STUCK_AFTER_MS = KILL_AFTER_MS + 1000;

export class TunnelProcess {
  /** Set by stop(): the exit that follows is a normal stop, not a crash. */
  stopRequested = false;
  /** The readiness wait of the start in progress: it gets the exit and the output lines that decide the start. */
  waiter: StartWaiter | null = null;
  /** "status N" or "signal S" once the process has exited; null while it runs. */
  exit: string | null = null;
  /** Settles once the process has exited and its port and slot are given back. */
  readonly exited: Promise<void>;
  private killTimer: Timer | null = null;

  constructor(
    readonly hostname: string,
    readonly port: number,
    private readonly child: ChildHandle,
    private readonly clock: Clock,
    giveBack: (process: TunnelProcess) => void,
  ) {
    this.exited = child.exited.then((exit) => {
      this.killTimer?.cancel();
      this.exit = exit.signal === null ? `status ${exit.code}` : `signal ${exit.signal}`;
      giveBack(this);
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** SIGTERM to its process group now, SIGKILL KILL_AFTER_MS later if it is still there. Once only. */
  stop(): void {
    if (this.stopRequested || !this.running) return;
    this.stopRequested = true;
    this.child.kill("SIGTERM");
    this.killTimer = this.clock.after(KILL_AFTER_MS, () => this.child.kill("SIGKILL"));
  }

  /** Resolves true at the exit, or false if the process is still there STUCK_AFTER_MS from now: waits always end. */
  gone(): Promise<boolean> {
    if (!this.running) return Promise.resolve(true);
    let timer: Timer | undefined;
    const stuck = new Promise<boolean>((resolve) => (timer = this.clock.after(STUCK_AFTER_MS, () => resolve(false))));
    return Promise.race([this.exited.then(() => (timer?.cancel(), true)), stuck]);
  }
}

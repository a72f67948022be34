// Waits for a starting tunnel: ready when its port listens (polled with backoff), failed on exit, bad output or timeout.
import type { Clock, Timer } from "../clock.ts";
import type { PortProbe } from "./types.ts";

export const FIRST_POLL_MS = 2;
export const MAX_POLL_MS = 50;

export type StartOutcome =
  | { readonly kind: "ready" }
  | { readonly kind: "failed"; readonly reason: string; readonly retryOtherPort: boolean; readonly login: boolean };

/** One pending start: settled by the poll loop, the child's exit or its output, whichever comes first. */
export class StartWaiter {
  readonly outcome: Promise<StartOutcome>;
  private settle!: (outcome: StartOutcome) => void;
  private settled = false;
  private timer: Timer | null = null;
  /** Bumped by hint(): a poll chain from an older generation stops instead of running alongside the new one. */
  private generation = 0;
  private timeout: Timer;

  constructor(
    private readonly clock: Clock,
    private readonly probe: PortProbe,
    private readonly port: number,
    timeoutMs: number,
  ) {
    this.outcome = new Promise((resolve) => (this.settle = resolve));
    this.timeout = clock.after(timeoutMs, () => this.fail(`not listening after ${timeoutMs}ms (--startup-timeout)`));
    this.poll(FIRST_POLL_MS);
  }

  get pending(): boolean {
    return !this.settled;
  }

  /**
   * cloudflared prints its startup line just before it binds: not readiness, but the moment to look closely. Polls
   * now and restarts the backoff, so the bind is seen within a few milliseconds instead of up to MAX_POLL_MS later.
   */
  hint(): void {
    if (this.settled) return;
    this.timer?.cancel();
    this.timer = null;
    this.generation++;
    this.poll(FIRST_POLL_MS);
  }

  fail(reason: string, options: { retryOtherPort?: boolean; login?: boolean } = {}): void {
    this.finish({ kind: "failed", reason, retryOtherPort: options.retryOtherPort ?? false, login: options.login ?? false });
  }

  private finish(outcome: StartOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.timeout.cancel();
    this.timer?.cancel();
    this.settle(outcome);
  }

  private poll(delayMs: number): void {
    if (this.settled) return;
    const generation = this.generation;
    this.probe.isListening(this.port).then(
      (listening) => {
        if (listening) this.finish({ kind: "ready" });
        else if (!this.settled && generation === this.generation) {
          this.timer = this.clock.after(delayMs, () => this.poll(Math.min(delayMs * 2, MAX_POLL_MS)));
        }
      },
      (error) => this.fail(`readiness check failed: ${(error as Error).message}`),
    );
  }
}

// Summary lines held a moment: a connection whose backend ended first may have lost its tunnel process, whose exit
// the supervisor sees a little after the sockets close. Held lines are reported once the exit is known or a second
// has passed, whichever comes first.
import { realClock, type Clock, type Timer } from "../clock.ts";

/** How long after a backend's close a tunnel exit still explains it (and the other way round). */
export const EXIT_WINDOW_MS = 1000;

interface Held {
  readonly hostname: string;
  readonly until: number;
  /** Called once: with the exit's reason, or undefined when none came in time. */
  readonly report: (exit: string | undefined) => void;
}

export class ExitWatch {
  /** In the order they were held, so in deadline order. */
  private held: Held[] = [];
  private timer: Timer | null = null;

  constructor(private readonly clock: Clock = realClock) {}

  get size(): number {
    return this.held.length;
  }

  hold(hostname: string, report: (exit: string | undefined) => void): void {
    this.held.push({ hostname, until: this.clock.now() + EXIT_WINDOW_MS, report });
    this.timer ??= this.clock.after(EXIT_WINDOW_MS, () => this.expire());
  }

  /** `hostname`'s tunnel process exited unasked: every line held for it says so. */
  exited(hostname: string, reason: string): void {
    const matching = this.held.filter((held) => held.hostname === hostname);
    if (matching.length === 0) return;
    this.held = this.held.filter((held) => held.hostname !== hostname);
    for (const held of matching) held.report(reason);
  }

  /** Reports every held line now, as if no exit came (the proxy is stopping). */
  flush(): void {
    this.timer?.cancel();
    this.timer = null;
    const all = this.held;
    this.held = [];
    for (const held of all) held.report(undefined);
  }

  private expire(): void {
    this.timer = null;
    const now = this.clock.now();
    let due = 0;
    while (due < this.held.length && (this.held[due] as Held).until <= now) due++;
    const expired = this.held.slice(0, due);
    this.held = this.held.slice(due);
    for (const held of expired) held.report(undefined);
    const next = this.held[0];
    if (next !== undefined) this.timer = this.clock.after(Math.max(next.until - now, 1), () => this.expire());
  }
}

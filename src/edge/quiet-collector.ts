// Gives memory back after a burst: one full garbage collection once an edge has seen no accept or close for a while.
import { realClock, type Clock, type Timer } from "../clock.ts";

/**
 * JavaScriptCore collects when allocation asks it to, so the garbage of a burst (fresh read buffers, connection
 * objects) can sit in a quiet process for half a minute. Counting events costs one increment; the check runs every
 * `quietMs`, and the collection runs once per busy spell, after a quiet `quietMs`.
 */
export class QuietCollector {
  private events = 0;
  private seen = 0;
  private owed = false;
  private timer: Timer | null = null;

  constructor(
    private readonly collect: () => void,
    private readonly quietMs: number,
    private readonly clock: Clock = realClock,
  ) {}

  start(): void {
    this.timer = this.clock.after(this.quietMs, () => this.check());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** An accept or a close. */
  note(): void {
    this.events++;
  }

  private check(): void {
    if (this.events !== this.seen) {
      this.seen = this.events;
      this.owed = true;
    } else if (this.owed) {
      this.owed = false;
      this.collect();
    }
    this.start();
  }
}

// Connection outcomes over the last minute: the totals are sampled every few seconds, and the last minute is now's
// totals minus the newest sample taken at least a minute ago.
export type Totals = ReadonlyMap<string, number>;

export const WINDOW_MS = 60_000;

interface Sample {
  readonly at: number;
  readonly totals: Totals;
}

export class OutcomeHistory {
  /** Oldest first; only the newest sample at least a window old is kept of the older ones. */
  private readonly samples: Sample[] = [];

  constructor(private readonly windowMs = WINDOW_MS) {}

  /** The totals as of `at` (times only grow). */
  record(at: number, totals: Totals): void {
    this.samples.push({ at, totals: new Map(totals) });
    while (this.samples.length > 1 && (this.samples[1] as Sample).at <= at - this.windowMs) this.samples.shift();
  }

  /**
   * Per outcome of `current`, what was added since the newest sample at least a window before `at` — since the oldest
   * sample while the history is younger than a window, and since zero before the first sample.
   */
  lastWindow(at: number, current: Totals): Map<string, number> {
    const base = this.baseline(at);
    const result = new Map<string, number>();
    // Counters only grow, but an edge thread that died takes its counts with it: never report a negative count.
    for (const [outcome, total] of current) result.set(outcome, Math.max(0, total - (base.get(outcome) ?? 0)));
    return result;
  }

  private baseline(at: number): Totals {
    let chosen = this.samples[0];
    for (const sample of this.samples) {
      if (sample.at > at - this.windowMs) break;
      chosen = sample;
    }
    return chosen?.totals ?? new Map();
  }
}

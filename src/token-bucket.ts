// Rate limits as token buckets: N per second in bursts of N, for one thing (tunnel starts) or per key (cancels by
// client address), on an injected clock so tests control time.
/** A bucket's state: tokens left and when they were counted. */
interface Bucket {
  tokens: number;
  at: number;
}

function refill(bucket: Bucket, rate: number, now: number): void {
  bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) * rate) / 1000);
  bucket.at = now;
}

/** One bucket. `rate` 0 means unlimited. */
export class TokenBucket {
  private readonly bucket: Bucket;

  constructor(
    private readonly rate: number,
    private readonly now: () => number,
  ) {
    this.bucket = { tokens: rate, at: now() };
  }

  tryTake(): boolean {
    if (this.rate === 0) return true;
    refill(this.bucket, this.rate, this.now());
    if (this.bucket.tokens < 1) return false;
    this.bucket.tokens--;
    return true;
  }

  /** Takes a token if one is there, never refusing: for work that must happen but still counts against the rate. */
  takeIfAny(): void {
    if (this.rate !== 0) this.tryTake();
  }
}

/** Keys beyond which full buckets (equivalent to none) are swept, and the oldest dropped if that is not enough. */
export const MAX_KEYS = 10_000;

/** A bucket per key, created on first use; memory stays bounded however many keys a flood brings. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rate: number,
    private readonly now: () => number,
    private readonly maxKeys = MAX_KEYS,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  tryTake(key: string): boolean {
    if (this.rate === 0) return true;
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.sweep(now);
      bucket = { tokens: this.rate, at: now };
      this.buckets.set(key, bucket);
    } else refill(bucket, this.rate, now);
    if (bucket.tokens < 1) return false;
    bucket.tokens--;
    return true;
  }

  /** Forgets buckets that have filled up again; then, if still too many, the oldest (a flood of distinct keys). */
  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      refill(bucket, this.rate, now);
      if (bucket.tokens >= this.rate) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}

// A growable byte buffer for bytes read before routing: appends without re-copying everything each time.
export class GrowableBuffer {
  private storage: Uint8Array;
  private used = 0;

  constructor(initialCapacity = 2048) {
    this.storage = new Uint8Array(initialCapacity);
  }

  get length(): number {
    return this.used;
  }

  append(chunk: Uint8Array): void {
    if (this.used + chunk.length > this.storage.length) {
      let capacity = this.storage.length * 2;
      while (capacity < this.used + chunk.length) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.storage.subarray(0, this.used));
      this.storage = grown;
    }
    this.storage.set(chunk, this.used);
    this.used += chunk.length;
  }

  /** The buffered bytes; valid until the next append or consume. */
  view(): Uint8Array {
    return this.storage.subarray(0, this.used);
  }

  /** Drops the first `count` bytes. */
  consume(count: number): void {
    this.storage.copyWithin(0, count, this.used);
    this.used -= count;
  }
}

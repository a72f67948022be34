// A growable byte buffer for bytes read before routing: appends without re-copying everything each time.
const EMPTY = new Uint8Array(0);
const FIRST_CAPACITY = 1024;

export class GrowableBuffer {
  /** Allocated on first use: most connections complete their prelude in one chunk and never copy. */
  private storage: Uint8Array = EMPTY;
  private used = 0;

  get length(): number {
    return this.used;
  }

  append(chunk: Uint8Array): void {
    if (this.used + chunk.length > this.storage.length) {
      let capacity = Math.max(FIRST_CAPACITY, this.storage.length * 2);
      while (capacity < this.used + chunk.length) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.storage.subarray(0, this.used));
      this.storage = grown;
    }
    this.storage.set(chunk, this.used);
    this.used += chunk.length;
  }

  /** The buffered bytes; valid until the next append or replace. */
  view(): Uint8Array {
    return this.storage.subarray(0, this.used);
  }

  /** Keeps only `rest`, which may be a view of this buffer. */
  replace(rest: Uint8Array): void {
    if (rest.buffer === this.storage.buffer) {
      this.storage.copyWithin(0, rest.byteOffset - this.storage.byteOffset, rest.byteOffset - this.storage.byteOffset + rest.length);
      this.used = rest.length;
      return;
    }
    this.used = 0;
    this.append(rest);
  }
}

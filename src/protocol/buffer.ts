// A growable byte buffer for bytes read before routing: amortised appends, capacity bounded by what has arrived.
const EMPTY = new Uint8Array(0);
const MIN_CAPACITY = 256;
/**
 * Growth per reallocation. Doubling would let a client holding a nearly complete 64 KiB ClientHello pin 128 KiB for
 * the whole hello timeout; a quarter keeps capacity within 1.25x of the bytes held while copies stay amortised O(1).
 */
const GROWTH = 1.25;

export class GrowableBuffer {
  /** Allocated on first use: most connections complete their prelude in one chunk and never copy. */
  private storage: Uint8Array = EMPTY;
  private used = 0;

  get length(): number {
    return this.used;
  }

  /** Bytes allocated, for memory bounds. */
  get capacity(): number {
    return this.storage.length;
  }

  append(chunk: Uint8Array): void {
    const needed = this.used + chunk.length;
    if (needed > this.storage.length) {
      const grown = new Uint8Array(Math.max(needed, MIN_CAPACITY, Math.floor(this.storage.length * GROWTH)));
      grown.set(this.storage.subarray(0, this.used));
      this.storage = grown;
    }
    this.storage.set(chunk, this.used);
    this.used = needed;
  }

  /** The buffered bytes; valid until the next append or replace. */
  view(): Uint8Array {
    return this.storage.subarray(0, this.used);
  }

  /** Keeps only `rest`, which may be a view of this buffer; an empty rest gives the storage back. */
  replace(rest: Uint8Array): void {
    if (rest.length === 0) {
      this.storage = EMPTY;
      this.used = 0;
      return;
    }
    if (rest.buffer === this.storage.buffer) {
      this.storage.copyWithin(0, rest.byteOffset - this.storage.byteOffset, rest.byteOffset - this.storage.byteOffset + rest.length);
      this.used = rest.length;
      return;
    }
    this.used = 0;
    this.append(rest);
  }
}

// Connection limits that hold across every edge thread: the total (--max-connections) in shared memory, read and
// updated without a message; the per-address count (--max-conns-per-ip) in the main thread, which workers ask.
import type { Maybe } from "./context.ts";

/** Edges per process at most; connection ids step by this, offset by the edge's index, so they never collide. */
export const MAX_EDGES = 64;
const TOTAL = 0;

/**
 * --max-connections across every edge: the total in a SharedArrayBuffer, taken with a compare-and-swap (never over
 * the limit, never refused while below it), plus each edge's own share, so the share of an edge thread that died can
 * be given back.
 */
export class SharedCounter {
  private readonly cells: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4 * (1 + MAX_EDGES))) {
    this.cells = new Int32Array(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.cells.buffer as SharedArrayBuffer;
  }

  get value(): number {
    return Atomics.load(this.cells, TOTAL);
  }

  /** Counts one more for `edge` unless the total would exceed `max` (0 = no limit). */
  tryTake(edge: number, max: number): boolean {
    for (;;) {
      const now = Atomics.load(this.cells, TOTAL);
      if (max !== 0 && now >= max) return false;
      if (Atomics.compareExchange(this.cells, TOTAL, now, now + 1) !== now) continue;
      Atomics.add(this.cells, 1 + edge, 1);
      return true;
    }
  }

  give(edge: number): void {
    Atomics.sub(this.cells, 1 + edge, 1);
    Atomics.sub(this.cells, TOTAL, 1);
  }

  /** `edge` is gone with its connections: its share leaves the total. */
  forget(edge: number): void {
    Atomics.sub(this.cells, TOTAL, Atomics.exchange(this.cells, 1 + edge, 0));
  }
}

/** --max-conns-per-ip as an edge sees it: decided here (main thread) or by a message to the main thread (worker). */
export interface PerAddressLimit {
  /** Counts `owner` under `address`; false, counting nothing, when that address is full. */
  admit(owner: number, address: string): Maybe<boolean>;
  /** Gives back whatever `owner` holds; safe to call when it holds nothing. */
  release(owner: number): void;
}

/** The one per-address count of the process, in the main thread; owners are numbers unique across edges. */
export class AddressCounts implements PerAddressLimit {
  private readonly counts = new Map<string, number>();
  private readonly owners = new Map<number, string>();

  constructor(private readonly max: number) {}

  admit(owner: number, address: string): boolean {
    if (this.max === 0) return true;
    if ((this.counts.get(address) ?? 0) >= this.max) return false;
    this.owners.set(owner, address);
    this.counts.set(address, (this.counts.get(address) ?? 0) + 1);
    return true;
  }

  /** `edge` is gone: every count its connections held is given back. */
  forgetEdge(edge: number): void {
    for (const owner of [...this.owners.keys()]) if (owner % MAX_EDGES === edge) this.release(owner);
  }

  release(owner: number): void {
    const address = this.owners.get(owner);
    if (address === undefined) return;
    this.owners.delete(owner);
    const count = (this.counts.get(address) ?? 1) - 1;
    if (count <= 0) this.counts.delete(address);
    else this.counts.set(address, count);
  }
}

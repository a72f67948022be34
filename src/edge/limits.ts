// Connection limits that hold across every edge thread: the total (--max-connections) in shared memory, read and
// updated without a message; the per-address count (--max-conns-per-ip) in the main thread, which workers ask.
import type { Maybe } from "./context.ts";

/** --max-connections: one counter in a SharedArrayBuffer, so every worker admits against the same total. */
export class SharedCounter {
  private readonly cell: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.cell = new Int32Array(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.cell.buffer as SharedArrayBuffer;
  }

  get value(): number {
    return Atomics.load(this.cell, 0);
  }

  /** Counts one more unless that would exceed `max` (0 = no limit). */
  tryTake(max: number): boolean {
    const now = Atomics.add(this.cell, 0, 1) + 1;
    if (max === 0 || now <= max) return true;
    Atomics.sub(this.cell, 0, 1);
    return false;
  }

  give(): void {
    Atomics.sub(this.cell, 0, 1);
  }
}

/** --max-conns-per-ip as an edge sees it: decided here (main thread) or by a message to the main thread (worker). */
export interface PerAddressLimit {
  /** Counts `owner` under `address`; false, counting nothing, when that address is full. */
  admit(owner: number, address: string): Maybe<boolean>;
  /** Moves `owner`'s count to `address` (a trusted PROXY source); false, moving nothing, when that address is full. */
  move(owner: number, address: string): Maybe<boolean>;
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

  move(owner: number, address: string): boolean {
    const from = this.owners.get(owner);
    if (this.max === 0 || from === address) return true;
    if ((this.counts.get(address) ?? 0) >= this.max) return false;
    this.release(owner);
    return this.admit(owner, address);
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

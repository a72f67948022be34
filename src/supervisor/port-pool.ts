// Local ports for tunnels: O(1) reserve and release over a ring of free ports, skipping ports other programs hold.
import { ProxyError } from "../errors.ts";

export class PortPool {
  private readonly ring: Int32Array;
  private head = 0;
  private free: number;
  private readonly reserved = new Set<number>();

  constructor(readonly start: number, readonly end: number) {
    this.free = end - start + 1;
    this.ring = new Int32Array(this.free);
    for (let i = 0; i < this.free; i++) this.ring[i] = start + i;
  }

  get size(): number {
    return this.ring.length;
  }

  get available(): number {
    return this.free;
  }

  /**
   * Takes the next free port; a port `isBusy` reports (held by another program) goes to the back of the ring.
   * Released ports also go to the back, so a port is reused as late as possible.
   */
  reserve(isBusy: (port: number) => boolean = () => false): number {
    for (let tries = this.free; tries > 0; tries--) {
      const port = this.take();
      if (!isBusy(port)) {
        this.reserved.add(port);
        return port;
      }
      this.put(port);
    }
    const reason = this.free === 0 ? "every port is in use by a tunnel" : "the free ports are held by other programs";
    throw new ProxyError("pool_exhausted", `no free port in ${this.start}-${this.end}: ${reason}`);
  }

  release(port: number): void {
    if (!this.reserved.delete(port)) return;
    this.put(port);
  }

  private take(): number {
    const port = this.ring[this.head] as number;
    this.head = (this.head + 1) % this.ring.length;
    this.free--;
    return port;
  }

  private put(port: number): void {
    this.ring[(this.head + this.free) % this.ring.length] = port;
    this.free++;
  }
}

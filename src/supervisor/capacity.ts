// The --max-tunnels cap: the live processes (a stopping one still counts), and how a start makes room at the cap.
import { ProxyError } from "../errors.ts";
import type { TunnelProcess } from "./process.ts";

/** Makes room for `forHostname` by stopping an idle tunnel (true once it stopped); null when none can be stopped. */
export type Evict = (forHostname: string) => Promise<boolean> | null;

export class Capacity {
  private readonly live = new Set<TunnelProcess>();

  constructor(
    readonly max: number,
    private readonly evict: Evict,
  ) {}

  get used(): number {
    return this.live.size;
  }

  hasRoom(): boolean {
    return this.live.size < this.max;
  }

  /** Every process that has not exited yet, the ones a tunnel has let go of included. */
  processes(): TunnelProcess[] {
    return [...this.live];
  }

  /** The slot a process holds from its spawn; the spawner checked hasRoom() in the same tick. */
  take(process: TunnelProcess): void {
    this.live.add(process);
  }

  /** Called once, by the process's own exit. */
  giveBack(process: TunnelProcess): void {
    this.live.delete(process);
  }

  /**
   * At the cap: waits for a stopping process to exit, or stops the least recently used idle tunnel and waits for
   * that; throws `tunnel_capacity` at once when neither exists. Returns when a slot may have come free: the caller
   * checks hasRoom() again and spawns in the same tick, so two starts never both take the last slot.
   */
  async freeOne(forHostname: string): Promise<void> {
    const stopping = this.processes().find((process) => process.stopRequested);
    if (stopping !== undefined) {
      if (await stopping.gone()) return;
      throw new ProxyError("tunnel_capacity", `${this.max} tunnels running and one does not exit (--max-tunnels)`);
    }
    const eviction = this.evict(forHostname);
    if (eviction === null) throw new ProxyError("tunnel_capacity", `${this.max} tunnels running and none idle (--max-tunnels)`);
    // An eviction that was abandoned (its tunnel got a connection) made no room: refuse rather than try again.
    if (!(await eviction)) throw new ProxyError("tunnel_capacity", `${this.max} tunnels running and none idle (--max-tunnels)`);
  }
}

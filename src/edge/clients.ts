// Client addresses of open connections: how many each has open (--max-conns-per-ip) and, per address, its proxied
// connections newest first (PostgreSQL cancel affinity). O(1) per open, move and close; the list lives
// in two pointers on each connection, so an idle connection costs no extra object.
import type { Connection } from "./connection.ts";
import type { TunnelProvider } from "../supervisor/types.ts";

/** Bounds the work one cancel can cause for a client (behind a NAT) with very many open connections. */
const MAX_WALK = 10_000;

class Client {
  count = 0;
  newest: Connection | null = null;
}

/** A tunnel a client's connection runs through, and when that connection started piping (epoch ms). */
export interface RecentTunnel {
  readonly hostname: string;
  readonly at: number;
}

export class Clients {
  private readonly byAddress = new Map<string, Client>();

  add(address: string): void {
    let client = this.byAddress.get(address);
    if (client === undefined) this.byAddress.set(address, (client = new Client()));
    client.count++;
  }

  remove(address: string): void {
    const client = this.byAddress.get(address);
    if (client === undefined) return;
    if (--client.count <= 0 && client.newest === null) this.byAddress.delete(address);
  }

  /** The connection is proxied now: it goes first in its client's list. Its address must be counted. */
  link(connection: Connection): void {
    const client = this.byAddress.get(connection.key);
    if (client === undefined) return;
    connection.proxiedAt = Date.now();
    connection.older = client.newest;
    if (client.newest !== null) client.newest.newer = connection;
    client.newest = connection;
  }

  unlink(connection: Connection): void {
    if (connection.proxiedAt === 0) return;
    const client = this.byAddress.get(connection.key);
    if (connection.newer !== null) connection.newer.older = connection.older;
    else if (client !== undefined) client.newest = connection.older;
    if (connection.older !== null) connection.older.newer = connection.newer;
    connection.newer = connection.older = null;
    connection.proxiedAt = 0;
  }

  /** The distinct tunnels this client's open proxied connections use, newest first. */
  recent(address: string): RecentTunnel[] {
    const found: RecentTunnel[] = [];
    let walked = 0;
    for (let c = this.byAddress.get(address)?.newest ?? null; c !== null && walked < MAX_WALK; c = c.older, walked++) {
      const hostname = c.hostname as string;
      if (!found.some((seen) => seen.hostname === hostname)) found.push({ hostname, at: c.proxiedAt });
    }
    return found;
  }
}

/** The ports of the tunnels in `recent` (newest first) that run now, at most `fanout`: a cancel never starts one. */
export function runningTargets(recent: readonly RecentTunnel[], tunnels: Pick<TunnelProvider, "runningPort">, fanout: number): number[] {
  const ports: number[] = [];
  for (const { hostname } of recent) {
    if (ports.length >= fanout) break;
    const port = tunnels.runningPort(hostname);
    if (port !== null && !ports.includes(port)) ports.push(port);
  }
  return ports;
}

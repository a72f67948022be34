// The edge listener: accepts clients, enforces connection limits, owns the Connection objects and backend sockets.
import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import { Clients } from "./clients.ts";
import type { Slots } from "./cancel.ts";
import type { CancelRoute, ReceivedCancel } from "./cancel-router.ts";
import { Connection } from "./connection.ts";
import type { EdgeConfig, EdgeContext } from "./context.ts";
import { trustChecker } from "./trust.ts";
import { normaliseAddress } from "../protocol/address.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics, Outcome } from "../ops/metrics.ts";
import type { TunnelProvider } from "../supervisor/types.ts";
import type { Maybe } from "./context.ts";
import { MAX_EDGES, type PerAddressLimit, type SharedCounter } from "./limits.ts";
import { QuietCollector } from "./quiet-collector.ts";
import { Summaries } from "./summaries.ts";
import { TOO_MANY_FROM_ADDRESS, TOO_MANY_IN_TOTAL } from "./refusal-reasons.ts";

export type ListenerConfig = EdgeConfig & Pick<Config, "listen" | "maxConnections" | "trustedProxies" | "reusePort" | "workers">;

/** What an edge shares with the others (one per thread), or has to itself when it is the only one. */
export interface EdgeDeps {
  readonly tunnels: TunnelProvider;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Open connections across every edge (--max-connections). */
  readonly total: SharedCounter;
  readonly perAddress: PerAddressLimit;
  /** Which edge this is: connection ids are unique across edges. */
  readonly index: number;
  /** Where a plaintext CancelRequest goes (the main thread decides, for every edge). */
  readonly routeCancel: (cancel: ReceivedCancel) => Promise<CancelRoute>;
}

/** How long an edge must see no accept or close before it collects its garbage (QuietCollector). */
const QUIET_MS = 1000;

const backendHandlers: SocketHandler<Connection> = {
  binaryType: "uint8array",
  open: (socket) => socket.data.onBackendOpen(socket),
  data: (socket, chunk) => socket.data.onBackendData(chunk),
  drain: (socket) => socket.data.onDrain(socket.data.backend),
  end: (socket) => socket.data.onEnd(socket.data.backend),
  close: (socket, error) => socket.data.onClose(socket.data.backend, socket, error),
  connectError: (socket, error) => socket.data.onBackendConnectError(error),
  error: (socket, error) => socket.data.onHandlerError(error),
};

export class EdgeListener implements EdgeContext {
  readonly connections = new Set<Connection>();
  readonly clients = new Clients();
  readonly isTrusted: (address: string) => boolean;
  readonly tunnels: TunnelProvider;
  readonly log: Logger;
  readonly metrics: Metrics;
  private listener: TCPSocketListener<Connection | undefined> | null = null;
  private emptied: (() => void) | null = null;
  private nextId: number;
  private readonly collector = new QuietCollector(() => Bun.gc(true), QUIET_MS);
  private readonly summaries: Summaries;

  constructor(
    readonly config: ListenerConfig,
    private readonly deps: EdgeDeps,
  ) {
    this.isTrusted = trustChecker(config.trustedProxies);
    this.tunnels = deps.tunnels;
    this.log = deps.log;
    this.metrics = deps.metrics;
    this.nextId = deps.index;
    this.summaries = new Summaries(deps.log, deps.metrics);
  }

  /**
   * Binds the listen address (`port` overrides the configured one: the port the first edge got for `:0`); throws
   * with the reason when it cannot. Several edges, or an upgrade overlapping two processes, share it with SO_REUSEPORT.
   */
  start(port = this.config.listen.port): number {
    const shared = this.config.reusePort || this.config.workers > 1;
    this.listener = Bun.listen<Connection | undefined>({
      hostname: this.config.listen.host,
      port,
      ...(shared ? { reusePort: true } : { exclusive: true }),
      allowHalfOpen: true,
      data: undefined,
      socket: {
        binaryType: "uint8array",
        open: (socket) => this.accept(socket),
        data: (socket, chunk) => socket.data?.onClientData(chunk),
        drain: (socket) => socket.data?.onDrain(socket.data.client),
        end: (socket) => socket.data?.onEnd(socket.data.client),
        close: (socket, error) => socket.data?.onClose(socket.data.client, socket as Socket<Connection>, error),
        error: (socket, error) => socket.data?.onHandlerError(error),
      },
    });
    this.collector.start();
    return this.listener.port;
  }

  /** Stops accepting; open connections carry on. */
  stopAccepting(): void {
    this.listener?.stop(false);
    this.listener = null;
    this.collector.stop();
  }

  /** Settles when no connection is open. */
  whenEmpty(): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.emptied = resolve));
  }

  closeAll(reason: string): void {
    for (const connection of [...this.connections]) connection.abandon(reason);
  }

  private accept(socket: Socket<Connection | undefined>): void {
    const address = normaliseAddress(socket.remoteAddress);
    if (!this.deps.total.tryTake(this.deps.index, this.config.maxConnections)) return this.refuseAtAccept(socket, address, "limit_total", TOO_MANY_IN_TOTAL);
    const id = (this.nextId += MAX_EDGES);
    // A trusted peer is a balancer: its connections count under the clients their PROXY headers name, settled later.
    const trusted = this.isTrusted(address);
    const admitted = trusted ? true : this.deps.perAddress.admit(id, address);
    if (admitted === false) {
      this.deps.total.give(this.deps.index);
      return this.refuseAtAccept(socket, address, "limit_per_ip", TOO_MANY_FROM_ADDRESS);
    }
    const connection = new Connection(this, address, admitted === true ? "prelude" : "admitting", id);
    socket.data = connection;
    this.connections.add(connection);
    this.clients.add(address);
    this.collector.note();
    connection.start(socket as Socket<Connection>, admitted === true ? null : admitted, trusted);
  }

  private refuseAtAccept(socket: Socket<Connection | undefined>, address: string, refusal: string, reason: string): void {
    this.metrics.refusals.inc(refusal);
    this.summaries.report("refused_limit", { client: address, outcome: "refused_limit", reason });
    socket.end();
  }

  admit(connection: Connection, address: string): Maybe<boolean> {
    return this.deps.perAddress.admit(connection.id, address);
  }

  rekey(connection: Connection, address: string): void {
    if (connection.key === address) return;
    this.clients.remove(connection.key);
    this.clients.add(address);
    connection.key = address;
  }

  connectBackend(port: number, connection: Connection): void {
    Bun.connect<Connection>({ hostname: "127.0.0.1", port, allowHalfOpen: true, data: connection, socket: backendHandlers }).catch(
      (error: Error) => connection.onBackendConnectError(error),
    );
  }

  proxied(connection: Connection): void {
    this.clients.link(connection);
  }

  routeCancel(cancel: ReceivedCancel): Promise<CancelRoute> {
    return this.deps.routeCancel(cancel);
  }

  readonly forwardSlots: Slots = {
    take: () => this.deps.total.tryTake(this.deps.index, this.config.maxConnections),
    give: () => this.deps.total.give(this.deps.index),
  };

  /** A tunnel process exited unasked: the connections that still use it are reported as failed by it. */
  tunnelExited(hostname: string, reason: string): void {
    for (const connection of this.connections) if (connection.hostname === hostname && connection.state === "piping") connection.tunnelExit ??= reason;
    this.summaries.tunnelExited(hostname, reason);
  }

  /** Reports the summary lines still held for a tunnel exit (the proxy is stopping). */
  flushHeld(): void {
    this.summaries.flush();
  }

  finished(connection: Connection, outcome: Outcome, reason: string | undefined): void {
    this.connections.delete(connection);
    this.collector.note();
    if (this.connections.size === 0) this.emptied?.();
    this.clients.unlink(connection);
    this.clients.remove(connection.key);
    this.deps.total.give(this.deps.index);
    this.deps.perAddress.release(connection.id);
    this.summaries.finished(connection, outcome, reason);
  }
}

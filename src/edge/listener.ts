// The edge listener: accepts clients, enforces connection limits, owns the Connection objects and backend sockets.
import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import { Clients } from "./clients.ts";
import { Connection } from "./connection.ts";
import type { EdgeConfig, EdgeContext } from "./context.ts";
import { trustChecker } from "./trust.ts";
import { normaliseAddress } from "../protocol/address.ts";
import type { Config } from "../config/load.ts";
import type { Fields, Logger } from "../ops/log.ts";
import type { Metrics, Outcome } from "../ops/metrics.ts";
import type { TunnelProvider } from "../supervisor/types.ts";

export type ListenerConfig = EdgeConfig & Pick<Config, "listen" | "maxConnections" | "maxConnsPerIp" | "trustedProxies">;

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
  private listener: TCPSocketListener<Connection | undefined> | null = null;
  private emptied: (() => void) | null = null;

  constructor(
    readonly config: ListenerConfig,
    readonly tunnels: TunnelProvider,
    readonly log: Logger,
    readonly metrics: Metrics,
  ) {
    this.isTrusted = trustChecker(config.trustedProxies);
  }

  /** Binds the listen address; throws with the reason when it cannot. */
  start(): number {
    this.listener = Bun.listen<Connection | undefined>({
      hostname: this.config.listen.host,
      port: this.config.listen.port,
      exclusive: true,
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
    return this.listener.port;
  }

  /** Stops accepting; open connections carry on. */
  stopAccepting(): void {
    this.listener?.stop(false);
    this.listener = null;
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
    const { maxConnections, maxConnsPerIp } = this.config;
    const overTotal = maxConnections > 0 && this.connections.size >= maxConnections;
    const overIp = maxConnsPerIp > 0 && this.clients.count(address) >= maxConnsPerIp;
    if (overTotal || overIp) {
      this.metrics.refusals.inc(overTotal ? "limit_total" : "limit_per_ip");
      this.report("refused_limit", { client: address, outcome: "refused_limit", reason: overTotal ? "--max-connections" : "--max-conns-per-ip" });
      socket.end();
      return;
    }
    const connection = new Connection(this, address, "prelude");
    socket.data = connection;
    this.connections.add(connection);
    this.clients.add(address);
    connection.start(socket as Socket<Connection>, null);
  }

  moveKey(connection: Connection, address: string): boolean {
    if (address === connection.key) return true;
    const limit = this.config.maxConnsPerIp;
    if (limit > 0 && this.clients.count(address) >= limit) return false;
    this.clients.remove(connection.key);
    this.clients.add(address);
    connection.key = address;
    return true;
  }

  connectBackend(port: number, connection: Connection): void {
    Bun.connect<Connection>({ hostname: "127.0.0.1", port, allowHalfOpen: true, data: connection, socket: backendHandlers }).catch(
      (error: Error) => connection.onBackendConnectError(error),
    );
  }

  proxied(connection: Connection): void {
    this.clients.link(connection);
  }

  async cancelTargets(address: string): Promise<number[]> {
    const ports: number[] = [];
    for (const { hostname } of this.clients.recent(address)) {
      if (ports.length >= this.config.cancelFanout) break;
      const port = this.tunnels.runningPort(hostname);
      if (port !== null && !ports.includes(port)) ports.push(port);
    }
    return ports;
  }

  finished(connection: Connection, outcome: Outcome, summary: Fields): void {
    this.connections.delete(connection);
    if (this.connections.size === 0) this.emptied?.();
    this.clients.unlink(connection);
    this.clients.remove(connection.key);
    this.metrics.bytes.inc("client_to_backend", connection.backend.written);
    this.metrics.bytes.inc("backend_to_client", connection.client.written);
    if (outcome === "cancel_forwarded" || outcome === "cancel_unroutable") this.metrics.cancels.inc(outcome === "cancel_forwarded" ? "forwarded" : "unroutable");
    this.report(outcome, summary);
  }

  private report(outcome: Outcome, summary: Fields): void {
    this.metrics.connections.inc(outcome);
    this.log.info("connection", summary);
  }
}

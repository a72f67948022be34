// The summary line of each connection, and its count by outcome: at once, or, for a connection whose backend ended
// first, once it is known whether its tunnel process died under it (exit-watch.ts).
import type { Connection } from "./connection.ts";
import { ExitWatch } from "./exit-watch.ts";
import type { Fields, Logger } from "../ops/log.ts";
import type { Metrics, Outcome } from "../ops/metrics.ts";

export class Summaries {
  private readonly exits = new ExitWatch();

  constructor(
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** `connection` has given back everything it took: its bytes are counted, its line written (or held). */
  finished(connection: Connection, outcome: Outcome, reason: string | undefined): void {
    this.metrics.bytes.inc("client_to_backend", connection.backend.written);
    this.metrics.bytes.inc("backend_to_client", connection.client.written);
    const durationMs = Math.round(performance.now() - connection.acceptedAt);
    if (outcome === "proxied" && connection.tunnelExit !== undefined) return this.summarise(connection, "tunnel_failed", connection.tunnelExit, durationMs);
    if (outcome === "proxied" && connection.backendFirst && connection.hostname !== undefined) {
      return this.exits.hold(connection.hostname, (exit) =>
        this.summarise(connection, exit === undefined ? outcome : "tunnel_failed", exit ?? reason, durationMs));
    }
    this.summarise(connection, outcome, reason, durationMs);
  }

  tunnelExited(hostname: string, reason: string): void {
    this.exits.exited(hostname, reason);
  }

  flush(): void {
    this.exits.flush();
  }

  /** A balancer checks every few seconds: its health checks are counted, and logged only at debug. */
  report(outcome: Outcome, summary: Fields): void {
    this.metrics.connections.inc(outcome);
    if (outcome === "health_check") this.log.debug("connection", summary);
    else this.log.info("connection", summary);
  }

  private summarise(connection: Connection, outcome: Outcome, reason: string | undefined, durationMs: number): void {
    this.report(outcome, {
      client: connection.address,
      proxy_src: connection.proxySource,
      sni: connection.sni,
      tunnel: connection.hostname,
      port: connection.port,
      tunnels: connection.cancelTunnels,
      bytes_in: connection.backend.written,
      bytes_out: connection.client.written,
      duration_ms: durationMs,
      outcome,
      reason,
    });
  }
}

// One client connection's lifecycle: a single state, transitions checked in one place, and one exit path (finish)
// that gives back everything the connection took — its tunnel lease, its limit count, its registry entry — once.
import type { Socket } from "bun";
import { after, type Timer } from "../clock.ts";
import type { EdgeContext } from "./context.ts";
import { Opening } from "./opening.ts";
import { forward, pipeClosed, pipeDrained, pipeEnded } from "./pipe.ts";
import { Side } from "./side.ts";
import type { Outcome } from "../ops/metrics.ts";
import { isProxyError } from "../errors.ts";
import { ALERT_INTERNAL_ERROR } from "../protocol/tls.ts";
import type { LeaseHolder, TunnelLease } from "../supervisor/types.ts";
import { MID_HANDSHAKE, NEXT, type ConnectionState } from "./connection-state.ts";
import { errnoName, isReset } from "./socket-errors.ts";

const ORIGIN_UNREACHABLE =
  "the tunnel closed before the backend answered: cloudflared most likely could not reach the origin (see its log line)";

export class Connection implements LeaseHolder {
  readonly client = new Side<Connection>("client");
  readonly backend = new Side<Connection>("backend");
  readonly acceptedAt = performance.now();
  /** The address this connection counts under (limits, cancel affinity): a trusted PROXY source, else the peer. */
  key: string;
  /** Everything before the pipe; dropped once the pipe starts, so an idle connection stays small. */
  opening: Opening | null = null;
  timer: Timer | null = null;
  lease: TunnelLease | null = null;
  /** Cancel affinity (clients.ts): this client's proxied connections, newest first, and when this one started. */
  newer: Connection | null = null;
  older: Connection | null = null;
  proxiedAt = 0;
  sni: string | undefined;
  hostname: string | undefined;
  port: number | undefined;
  proxySource: string | undefined;
  /** Tunnels a cancel was forwarded to. */
  cancelTunnels: number | undefined;
  /** The backend has sent a byte since the pipe started: the tunnel reached its origin. */
  answered = false;
  /** The backend ended or closed while the client still talked (the summary waits a moment for a tunnel exit). */
  backendFirst = false;
  /** The tunnel process exited (unasked) while this connection used it: why, for a `tunnel_failed` summary. */
  tunnelExit: string | undefined;
  private outcome: Outcome | null = null;
  private reason: string | undefined;

  constructor(
    readonly ctx: EdgeContext,
    /** The peer's address, canonical. */
    readonly address: string,
    public state: ConnectionState,
    /** Unique across the edges of the process: how another thread refers to this connection. */
    readonly id = 0,
  ) {
    this.key = address;
  }

  /** The one place a state changes; an illegal change is a bug, logged and not applied. */
  to(next: ConnectionState): boolean {
    if (!NEXT[this.state].includes(next)) {
      this.ctx.log.error("bug: illegal connection transition", { from: this.state, to: next, client: this.address });
      return false;
    }
    this.state = next;
    return true;
  }

  /** The client socket is open: the hello timer runs from now; in "admitting" the client waits for `verdict`. */
  start(socket: Socket<Connection>, verdict: Promise<boolean> | null, trustedPeer: boolean): void {
    this.client.socket = socket;
    this.armTimer(this.ctx.config.helloTimeoutMs, () => this.close("timeout", "no complete ClientHello within --hello-timeout", "hello_timeout"));
    this.opening = new Opening(this, socket, verdict, trustedPeer);
  }

  onClientData(chunk: Uint8Array): void {
    if (this.state === "piping") forward(this, this.client, this.backend, chunk);
    else this.opening?.onClientData(chunk);
  }

  onBackendData(chunk: Uint8Array): void {
    if (this.state === "piping") {
      this.answered = true;
      forward(this, this.backend, this.client, chunk);
    }
    else if (this.state === "awaitingSslAnswer") this.opening?.onSslAnswer(chunk);
  }

  onDrain(side: Side<Connection>): void {
    pipeDrained(this, side);
  }

  onLease(lease: TunnelLease): void {
    if (this.state !== "acquiring") return lease.release();
    this.lease = lease;
    this.port = lease.port;
    this.to("connecting");
    // A tunnel port whose accept queue is full retries the handshake for minutes: bound it like the hello.
    this.armTimer(this.ctx.config.helloTimeoutMs, () => this.fail("backend_error", "connect to the tunnel port timed out"));
    this.ctx.connectBackend(lease.port, this);
  }

  /** No tunnel: refused with its error's code as the detailed reason (capacity, start rate, cooldown, …). */
  onAcquireFailed(error: Error): void {
    if (this.state !== "acquiring") return;
    if (isProxyError(error)) this.ctx.metrics.refusals.inc(error.code);
    this.fail("tunnel_failed", error.message);
  }

  onTunnelLost(reason: string): void {
    this.fail("tunnel_failed", reason);
  }

  onBackendOpen(socket: Socket<Connection>): void {
    if (this.state !== "connecting" || this.opening === null) return socket.terminate();
    this.opening.onBackendOpen(socket);
  }

  /** A reset here is the tunnel accepting and then dropping the connection, as cloudflared does when the origin fails. */
  onBackendConnectError(error: Error): void {
    if (this.state !== "connecting") return;
    if (isReset(error)) return this.originFailed();
    this.fail("backend_error", `connect to tunnel port failed: ${errnoName(error) ?? error.message}`);
  }

  onEnd(side: Side<Connection>): void {
    side.readEnded = true;
    if (this.state === "piping") pipeEnded(this, side);
    else this.leftBeforePipe(side);
  }

  onClose(side: Side<Connection>, socket: Socket<Connection>, error?: Error): void {
    if (side.socket !== socket) return;
    const finishedBefore = side.readEnded || side.shut || side.closed;
    side.gone = side.closed = side.readEnded = true;
    if (this.state === "piping") {
      pipeClosed(this, side, error, finishedBefore);
      if (this.client.gone && this.backend.gone) this.close("proxied", undefined);
    } else this.leftBeforePipe(side);
    this.tryFinish();
  }

  /** A FIN or a close from `side` before the pipe: the same for both, since neither side can go on without the other. */
  private leftBeforePipe(side: Side<Connection>): void {
    switch (this.state) {
      case "admitting":
      case "prelude":
        if (this.opening?.healthCheck === true) return this.close("health_check", undefined);
        return this.close("refused_invalid", "client closed before a complete ClientHello", "client_closed");
      case "acquiring":
      case "connecting":
      case "awaitingSslAnswer":
        // A TLS client that sent FIN before its handshake completed can never complete it: it has left.
        if (side === this.client) return this.close("timeout", "client left before the tunnel was ready");
        return this.fail("backend_error",
          this.state === "awaitingSslAnswer" ? "backend closed before answering the SSLRequest" : "backend closed before the pipe started");
      default:
        return;
    }
  }

  /** A socket handler threw: a bug. The connection is logged and closed rather than left half-alive. */
  onHandlerError(error: Error): void {
    this.ctx.log.error("bug: connection handler threw", { client: this.address, state: this.state, error: error.stack ?? error.message });
    this.close("backend_error", `internal error: ${error.message}`);
  }

  /** The drain deadline passed or a second signal came: close whatever is still open. */
  abandon(reason: string): void {
    this.close(this.state === "piping" ? "proxied" : "timeout", reason);
  }

  /** The tunnel closed before the backend answered the ClientHello: the client gets the alert a failed tunnel gives. */
  originFailed(): void {
    this.ctx.metrics.originFailures.inc();
    this.client.send(ALERT_INTERNAL_ERROR);
    this.close("backend_error", ORIGIN_UNREACHABLE);
  }

  /** Fails a connection; a client waiting for the backend's side of the TLS handshake gets an internal_error alert. */
  fail(outcome: Outcome, reason: string): void {
    if (MID_HANDSHAKE.includes(this.state)) this.client.send(ALERT_INTERNAL_ERROR);
    this.close(outcome, reason);
  }

  /** Decides the outcome (the first one wins) and ends both sockets; finish follows once both have closed. */
  close(outcome: Outcome, reason: string | undefined, refusal?: string): void {
    if (this.state === "closing" || this.state === "finished") return;
    this.outcome = outcome;
    this.reason ??= reason;
    if (refusal !== undefined) this.ctx.metrics.refusals.inc(refusal);
    this.to("closing");
    this.clearTimer();
    this.opening = null;
    this.client.end();
    this.backend.end();
    this.tryFinish();
  }

  armTimer(ms: number, expired: () => void): void {
    this.timer?.cancel();
    this.timer = after(ms, expired);
  }

  clearTimer(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Keeps the first reason for a clean-looking close that was not (a reset, a failed write). */
  noteReason(reason: string): void {
    this.reason ??= reason;
  }

  private tryFinish(): void {
    if (this.state !== "closing" || !this.client.gone) return;
    if (this.backend.socket !== null && !this.backend.gone) return;
    this.to("finished");
    this.lease?.release();
    this.lease = null;
    this.ctx.finished(this, this.outcome ?? "proxied", this.reason);
  }
}

// One client connection: prelude, routing, tunnel, backend connect, replay, then the full-duplex pipe.
import type { Socket } from "bun";
import { Prelude, type PreludeStep } from "./prelude.ts";
import { route } from "./route.ts";
import { Side } from "./side.ts";
import { generatedProxyHeader } from "./send-proxy.ts";
import type { EdgeContext } from "./context.ts";
import type { Outcome } from "../ops/metrics.ts";
import type { LeaseHolder, TunnelLease } from "../supervisor/types.ts";
import { concat, fromAscii } from "../protocol/bytes.ts";
import { normaliseAddress } from "../protocol/address.ts";
import { SSL_REQUEST } from "../protocol/postgres.ts";
import { ALERT_INTERNAL_ERROR, ALERT_UNRECOGNIZED_NAME } from "../protocol/tls.ts";

type Phase = "prelude" | "routing" | "connecting" | "awaitingSslAnswer" | "piping" | "done";

const OK_REPLY = fromAscii("OK\n");
const SSL_ACCEPTED_BYTE = 0x53;
/** Bytes a paused client may still deliver before the pipe starts; beyond this the connection is refused. */
const MAX_QUEUED_BYTES = 1 << 20;

export class Connection implements LeaseHolder {
  readonly client = new Side<Connection>("client");
  readonly backend = new Side<Connection>("backend");
  readonly acceptedAt = performance.now();
  clientAddress = "";
  /** The address the per-IP limit counts this connection under: the PROXY source when trusted, else the peer. */
  limitAddress = "";
  private phase: Phase = "prelude";
  private prelude: Prelude | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Chunks that arrived while the tunnel started (rare: the client is paused); null until one does. */
  private queued: Uint8Array[] | null = null;
  private queuedBytes = 0;
  private replay: Uint8Array | null = null;
  private proxyHeaderOut: Uint8Array | null = null;
  private sslRequest = false;
  private lease: TunnelLease | null = null;
  private acquiring = false;
  private backendConnecting = false;
  private reported = false;
  private outcome: Outcome | null = null;
  private reason: string | undefined;
  private sni: string | undefined;
  private hostname: string | undefined;
  private port: number | undefined;
  private proxySource: string | undefined;

  constructor(private readonly ctx: EdgeContext) {}

  open(socket: Socket<Connection>, address: string): void {
    this.client.socket = socket;
    this.clientAddress = this.limitAddress = address;
    this.prelude = new Prelude(this.ctx.isTrusted(address));
    this.timer = setTimeout(() => this.close("timeout", "no complete ClientHello within --hello-timeout", "hello_timeout"),
      this.ctx.config.helloTimeoutMs);
  }

  onClientData(chunk: Uint8Array): void {
    switch (this.phase) {
      case "prelude":
        return this.onPreludeStep((this.prelude as Prelude).feed(chunk));
      case "piping":
        return this.forward(this.client, this.backend, chunk);
      case "done":
        return;
      default:
        this.client.pause();
        (this.queued ??= []).push(chunk);
        this.queuedBytes += chunk.length;
        if (this.queuedBytes > MAX_QUEUED_BYTES) this.close("refused_invalid", "client sent too much before the tunnel was ready", "queue_full");
    }
  }

  private onPreludeStep(step: PreludeStep): void {
    if (step.reply !== null) this.client.send(step.reply);
    if (!this.checkProxySource() || step.kind === "needMore") return;
    this.prelude = null;
    if (step.kind === "refuse") return this.close(step.outcome, step.reason, step.code);
    this.clearTimer();
    const { config } = this.ctx;
    if (step.hello.serverName === null) {
      this.client.send(config.onNoSni === "ok" ? OK_REPLY : ALERT_UNRECOGNIZED_NAME);
      return this.close("refused_no_sni", "ClientHello without server_name", "no_sni");
    }
    const routed = route(step.hello.serverName, config.allowSniSuffix, config.hostnameTemplate);
    this.sni = routed.sni;
    if (routed.kind !== "ok") {
      this.client.send(ALERT_UNRECOGNIZED_NAME);
      if (routed.kind === "not_allowed") return this.close("refused_not_allowed", "SNI outside --allow-sni-suffix", "not_allowed");
      return this.close("refused_invalid", `${routed.kind.replace("_", " ")}`, routed.kind);
    }
    this.hostname = routed.hostname;
    this.replay = step.replay;
    this.sslRequest = step.sslRequest;
    this.proxyHeaderOut = step.proxyHeader?.bytes ?? this.generatedHeader();
    this.phase = "routing";
    this.client.pause();
    const warm = this.ctx.tunnels.tryAcquire(routed.hostname, this);
    if (warm !== null) return this.onTunnel(warm);
    this.acquiring = true;
    this.ctx.tunnels.acquire(routed.hostname, this).then(
      (lease) => this.onTunnel(lease),
      (error: Error) => {
        this.acquiring = false;
        if (this.phase !== "done") this.client.send(ALERT_INTERNAL_ERROR);
        this.close("tunnel_failed", error.message);
        this.finishIfGone();
      },
    );
  }

  /** `--send-proxy`: the real client and local addresses, read from the socket only when a header is wanted. */
  private generatedHeader(): Uint8Array | null {
    const socket = this.client.socket;
    if (this.ctx.config.sendProxy === "off" || socket === null) return null;
    return generatedProxyHeader(this.ctx.config.sendProxy, {
      clientAddress: this.clientAddress,
      clientPort: socket.remotePort,
      localAddress: normaliseAddress(socket.localAddress),
      localPort: socket.localPort,
    });
  }

  /** A trusted PROXY header moves the per-IP count to the source it carries (DESIGN §1.1). */
  private checkProxySource(): boolean {
    const source = this.prelude?.received?.source?.address;
    if (source === undefined || this.proxySource !== undefined) return true;
    this.proxySource = source;
    if (this.ctx.moveLimit(this, source)) return true;
    this.close("refused_limit", "too many connections from the PROXY source (--max-conns-per-ip)", "limit_per_ip");
    return false;
  }

  private onTunnel(lease: TunnelLease): void {
    this.acquiring = false;
    this.lease = lease;
    this.port = lease.port;
    if (this.phase === "done") return this.finishIfGone();
    this.phase = "connecting";
    this.backendConnecting = true;
    this.ctx.connectBackend(lease.port, this);
  }

  onBackendOpen(socket: Socket<Connection>): void {
    this.backendConnecting = false;
    this.backend.socket = socket;
    if (this.phase === "done") return this.backend.end();
    if (this.proxyHeaderOut !== null) this.backend.send(this.proxyHeaderOut);
    if (!this.sslRequest) return this.startPipe();
    this.backend.send(SSL_REQUEST);
    this.phase = "awaitingSslAnswer";
    this.timer = setTimeout(() => this.close("timeout", "backend did not answer the SSLRequest", "backend_timeout"),
      this.ctx.config.helloTimeoutMs);
  }

  onBackendConnectError(error: Error): void {
    if (!this.backendConnecting) return;
    this.backendConnecting = false;
    this.client.send(ALERT_INTERNAL_ERROR);
    this.close("backend_error", `connect to tunnel port failed: ${error.message}`);
  }

  onBackendData(chunk: Uint8Array): void {
    if (this.phase === "piping") return this.forward(this.backend, this.client, chunk);
    if (this.phase !== "awaitingSslAnswer") return;
    this.clearTimer();
    if (chunk[0] !== SSL_ACCEPTED_BYTE) {
      this.ctx.log.warn("backend refused TLS", { client: this.clientAddress, tunnel: this.hostname, port: this.port });
      return this.close("backend_refused_tls", "backend answered the SSLRequest without S");
    }
    this.startPipe();
    if (chunk.length > 1) this.forward(this.backend, this.client, chunk.subarray(1));
  }

  private startPipe(): void {
    this.phase = "piping";
    const replay = this.queued === null ? (this.replay as Uint8Array) : concat([this.replay as Uint8Array, ...this.queued]);
    this.replay = null;
    this.queued = null;
    this.forward(this.client, this.backend, replay);
    this.ctx.metrics.handshake.observe((performance.now() - this.acceptedAt) / 1000);
    if (this.client.readEnded) this.backend.shutdown();
    else if (this.backend.pending === null) this.client.resume();
  }

  private forward(from: Side<Connection>, to: Side<Connection>, chunk: Uint8Array): void {
    if (to.closed) return;
    if (!to.send(chunk)) return this.close("backend_error", `write to ${to.name} failed`);
    if (to.pending !== null) from.pause();
  }

  onDrain(side: Side<Connection>): void {
    if (side.closed) return;
    const from = side === this.client ? this.backend : this.client;
    if (!side.flush()) {
      if (side.pending === null) this.close("backend_error", `write to ${side.name} failed`);
      return;
    }
    if (from.gone) side.end();
    else if (from.readEnded) side.shutdown();
    else if (this.phase === "piping") from.resume();
  }

  /** The peer of `side` sent FIN: pass the half-close on once everything it sent is written. */
  onEnd(side: Side<Connection>): void {
    side.readEnded = true;
    if (this.phase === "prelude") return this.close("refused_invalid", "client closed before a complete ClientHello", "client_closed");
    if (this.phase !== "piping") return;
    const other = side === this.client ? this.backend : this.client;
    other.shutdown();
    if (this.client.readEnded && this.backend.readEnded && this.client.pending === null && this.backend.pending === null) {
      this.client.end();
      this.backend.end();
    }
  }

  onClose(side: Side<Connection>, error?: Error): void {
    side.gone = true;
    side.closed = true;
    side.readEnded = true;
    if (this.phase === "piping") {
      const other = side === this.client ? this.backend : this.client;
      if (error !== undefined) this.reason ??= `${side.name}: ${error.message}`;
      if (error !== undefined || other.pending === null) other.end();
    } else if (side === this.backend) {
      this.close("backend_error", "backend closed before the pipe started");
    } else if (this.phase === "prelude") {
      this.close("refused_invalid", "client closed before a complete ClientHello", "client_closed");
    } else {
      this.close("timeout", "client left before the tunnel was ready");
    }
    this.finishIfGone();
  }

  onTunnelLost(reason: string): void {
    this.close("tunnel_failed", reason);
  }

  /** The drain deadline passed: close whatever is still open. */
  abandon(reason: string): void {
    this.close(this.phase === "piping" ? "proxied" : "timeout", reason);
  }

  /** Ends both sides (after whatever reply was already written) and records the outcome. */
  close(outcome: Outcome, reason: string, refusal?: string): void {
    if (this.phase === "done") return;
    this.outcome ??= outcome;
    this.reason ??= reason;
    if (refusal !== undefined) this.ctx.metrics.refusals.inc(refusal);
    this.phase = "done";
    this.clearTimer();
    this.client.end();
    this.backend.end();
    this.finishIfGone();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private finishIfGone(): void {
    if (this.reported || !this.client.gone || this.acquiring || this.backendConnecting) return;
    if (this.backend.socket !== null && !this.backend.gone) return;
    this.reported = true;
    this.lease?.release();
    const outcome = this.outcome ?? "proxied";
    this.ctx.finished(this, outcome, {
      client: this.clientAddress,
      proxy_src: this.proxySource,
      sni: this.sni,
      tunnel: this.hostname,
      port: this.port,
      bytes_in: this.backend.written,
      bytes_out: this.client.written,
      duration_ms: Math.round(performance.now() - this.acceptedAt),
      outcome,
      reason: this.reason,
    });
  }
}

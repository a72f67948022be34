// A connection before its pipe: the prelude, routing, the tunnel lease, the backend connect and the replay of every
// byte consumed; or, for a plaintext CancelRequest, its forwarding by client affinity (DESIGN §1, §1a).
import type { Socket } from "bun";
import type { Connection } from "./connection.ts";
import { forwardCancel } from "./cancel.ts";
import { Prelude, type PreludeStep } from "./prelude.ts";
import { route } from "./route.ts";
import { generatedProxyHeader } from "./send-proxy.ts";
import { concat, fromAscii } from "../protocol/bytes.ts";
import { normaliseAddress } from "../protocol/address.ts";
import { SSL_REQUEST } from "../protocol/postgres.ts";
import { ALERT_UNRECOGNIZED_NAME } from "../protocol/tls.ts";

const OK_REPLY = fromAscii("OK\n");
const SSL_ACCEPTED_BYTE = 0x53;
/**
 * Bytes queued while the tunnel starts before the client is paused. It is not paused at once: a paused socket does
 * not report a FIN, and a client that leaves during a cold start must be seen leaving (a TLS client sends nothing
 * after its ClientHello until it hears back, so it stays below this).
 */
const PAUSE_QUEUED_BYTES = 64 * 1024;
/** Bytes a client may still deliver before the pipe starts; beyond this the connection is refused. */
export const MAX_QUEUED_BYTES = 1 << 20;

export class Opening {
  private prelude: Prelude | null;
  /** Chunks that arrived after the prelude ended, to replay after the ClientHello; null until one does. */
  private queued: Uint8Array[] | null = null;
  private queuedBytes = 0;
  private replay: Uint8Array | null = null;
  private proxyHeaderOut: Uint8Array | null = null;
  private sslRequest = false;
  /** A prelude step held while another thread decides whether the PROXY source is within its limit. */
  private parked: PreludeStep | null = null;

  /** `verdict`: the peer's per-address limit, when another thread decides it (the client waits for it, paused). */
  constructor(
    private readonly conn: Connection,
    private readonly socket: Socket<Connection>,
    verdict: Promise<boolean> | null,
  ) {
    const { ctx } = conn;
    this.prelude = new Prelude(ctx.isTrusted(conn.address), ctx.config.cancelFanout > 0);
    if (verdict === null) return;
    conn.client.pause();
    verdict.then(
      (allowed) => this.onVerdict(allowed),
      () => this.onVerdict(false),
    );
  }

  onClientData(chunk: Uint8Array): void {
    if (this.conn.state === "prelude" && this.prelude !== null) return this.onPreludeStep(this.prelude.feed(chunk));
    (this.queued ??= []).push(chunk);
    this.queuedBytes += chunk.length;
    if (this.conn.state === "admitting" || this.queuedBytes > PAUSE_QUEUED_BYTES) this.conn.client.pause();
    if (this.queuedBytes > MAX_QUEUED_BYTES) this.conn.close("refused_invalid", "client sent too much before the tunnel was ready", "queue_full");
  }

  /** Another thread's verdict on --max-conns-per-ip (worker mode), for the peer at accept or a PROXY source. */
  onVerdict(allowed: boolean): void {
    const { conn } = this;
    if (conn.state !== "admitting") return;
    const step = this.parked;
    this.parked = null;
    if (!allowed) {
      if (step === null) return conn.close("refused_limit", "--max-conns-per-ip", "limit_per_ip");
      return this.refuseSourceLimit();
    }
    conn.to("prelude");
    conn.client.resume();
    const queued = this.takeQueued();
    if (step !== null) {
      conn.ctx.rekey(conn, conn.proxySource as string);
      this.afterSource(step);
    }
    for (const chunk of queued) this.onClientData(chunk);
  }

  private onPreludeStep(step: PreludeStep): void {
    const { conn } = this;
    if (step.reply !== null) conn.client.send(step.reply);
    const source = this.prelude?.received?.source?.address;
    if (source === undefined || conn.proxySource !== undefined) return this.afterSource(step);
    conn.proxySource = source;
    const moved = conn.ctx.moveKey(conn, source);
    if (moved === true) {
      conn.ctx.rekey(conn, source);
      return this.afterSource(step);
    }
    if (moved === false) return this.refuseSourceLimit();
    this.parked = step;
    conn.to("admitting");
    conn.client.pause();
    moved.then((allowed) => this.onVerdict(allowed), () => this.onVerdict(false));
  }

  private refuseSourceLimit(): void {
    this.conn.close("refused_limit", "too many connections from the PROXY source (--max-conns-per-ip)", "limit_per_ip");
  }

  private afterSource(step: PreludeStep): void {
    const { conn } = this;
    if (step.kind === "needMore") return;
    this.prelude = null;
    if (step.kind === "refuse") return conn.close(step.outcome, step.reason, step.code);
    conn.clearTimer();
    this.proxyHeaderOut = step.proxyHeader?.bytes ?? this.generatedHeader();
    if (step.kind === "cancel") return this.cancel(step.request);
    const { config } = conn.ctx;
    if (step.hello.serverName === null) {
      conn.client.send(config.onNoSni === "ok" ? OK_REPLY : ALERT_UNRECOGNIZED_NAME);
      return conn.close("refused_no_sni", "ClientHello without server_name", "no_sni");
    }
    const routed = route(step.hello.serverName, config.allowSniSuffix, config.hostnameTemplate);
    conn.sni = routed.sni;
    if (routed.kind !== "ok") {
      conn.client.send(ALERT_UNRECOGNIZED_NAME);
      if (routed.kind === "not_allowed") return conn.close("refused_not_allowed", "SNI outside --allow-sni-suffix", "not_allowed");
      return conn.close("refused_invalid", routed.kind.replace("_", " "), routed.kind);
    }
    conn.hostname = routed.hostname;
    this.replay = step.replay;
    this.sslRequest = step.sslRequest;
    conn.to("acquiring");
    const warm = conn.ctx.tunnels.tryAcquire(routed.hostname, conn);
    if (warm !== null) return conn.onLease(warm);
    conn.ctx.tunnels.acquire(routed.hostname, conn).then(
      (lease) => conn.onLease(lease),
      (error: Error) => conn.onAcquireFailed(error),
    );
  }

  /** `--send-proxy`: the real client and local addresses, read from the socket only when a header is wanted. */
  private generatedHeader(): Uint8Array | null {
    const mode = this.conn.ctx.config.sendProxy;
    if (mode === "off") return null;
    return generatedProxyHeader(mode, {
      clientAddress: this.conn.address,
      clientPort: this.socket.remotePort,
      localAddress: normaliseAddress(this.socket.localAddress),
      localPort: this.socket.localPort,
    });
  }

  /** DESIGN §1a: the client gets no bytes; it is closed once every forward is written. */
  private cancel(request: Uint8Array): void {
    const { conn } = this;
    conn.to("cancelling");
    conn.client.pause();
    const message = this.proxyHeaderOut === null ? request.slice() : concat([this.proxyHeaderOut, request]);
    conn.opening = null;
    conn.ctx
      .cancelTargets(conn.key)
      .then((ports) => forwardCancel(ports, message))
      .then(
        (forwarded) => conn.onCancelled(forwarded),
        () => conn.onCancelled(0),
      );
  }

  onBackendOpen(socket: Socket<Connection>): void {
    const { conn } = this;
    conn.clearTimer();
    conn.backend.socket = socket;
    if (this.proxyHeaderOut !== null) conn.backend.send(this.proxyHeaderOut);
    if (!this.sslRequest) return this.startPipe();
    conn.backend.send(SSL_REQUEST);
    conn.to("awaitingSslAnswer");
    conn.armTimer(conn.ctx.config.helloTimeoutMs, () => {
      conn.ctx.metrics.refusals.inc("backend_timeout");
      conn.fail("timeout", "backend did not answer the SSLRequest");
    });
  }

  onSslAnswer(chunk: Uint8Array): void {
    const { conn } = this;
    conn.clearTimer();
    if (chunk[0] !== SSL_ACCEPTED_BYTE) {
      conn.ctx.log.warn("backend refused TLS", { client: conn.address, tunnel: conn.hostname, port: conn.port });
      return conn.close("backend_refused_tls", "backend answered the SSLRequest without S");
    }
    this.startPipe();
    if (chunk.length > 1) conn.onBackendData(chunk.subarray(1));
  }

  private startPipe(): void {
    const { conn } = this;
    conn.to("piping");
    conn.opening = null;
    const queued = this.takeQueued();
    const replay = queued.length === 0 ? (this.replay as Uint8Array) : concat([this.replay as Uint8Array, ...queued]);
    this.replay = null;
    conn.ctx.proxied(conn);
    conn.onClientData(replay);
    conn.ctx.metrics.handshake.observe((performance.now() - conn.acceptedAt) / 1000);
    if (conn.client.readEnded) conn.backend.shutdown();
    else if (conn.backend.pending === null) conn.client.resume();
  }

  private takeQueued(): Uint8Array[] {
    const queued = this.queued ?? [];
    this.queued = null;
    this.queuedBytes = 0;
    return queued;
  }
}

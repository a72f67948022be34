// A connection before its pipe: the prelude, whom it counts under, routing and the tunnel lease; then the handover
// (handover.ts) replays what was consumed to the backend, or a plaintext CancelRequest goes to cancel routing.
import type { Socket } from "bun";
import type { Connection } from "./connection.ts";
import { cancel } from "./cancelling.ts";
import { Prelude, type PreludeStep, type ProxyHeader } from "./prelude.ts";
import { route } from "./route.ts";
import { outgoingHeader, type Endpoints } from "./send-proxy.ts";
import { fromAscii } from "../protocol/bytes.ts";
import { normaliseAddress } from "../protocol/address.ts";
import { Handover } from "./handover.ts";
import { ALERT_UNRECOGNIZED_NAME } from "../protocol/tls.ts";
import type { Maybe } from "./context.ts";
import { TOO_MANY_FROM_ADDRESS, TOO_MANY_FROM_SOURCE } from "./refusal-reasons.ts";

const OK_REPLY = fromAscii("OK\n");
/**
 * Bytes queued while the tunnel starts before the client is paused. It is not paused at once: a paused socket does
 * not report a FIN, and a client that leaves during a cold start must be seen leaving (a TLS client sends nothing
 * after its ClientHello until it hears back, so it stays below this).
 */
const PAUSE_QUEUED_BYTES = 64 * 1024;
/** The longest SNI a summary line carries: an invalid one can be 64 KiB of anything. */
const MAX_LOGGED_SNI = 255;
/** Bytes a client may still deliver before the pipe starts; beyond this the connection is refused. */
export const MAX_QUEUED_BYTES = 1 << 20;

export class Opening {
  private prelude: Prelude | null;
  /** Chunks that arrived after the prelude ended, to replay after the ClientHello; null until one does. */
  private queued: Uint8Array[] | null = null;
  private queuedBytes = 0;
  private handover: Handover | null = null;
  /** A prelude step held while another thread decides whether its client is within --max-conns-per-ip. */
  private parked: PreludeStep | null = null;
  /**
   * Whether the client this connection counts under is still to be settled: a trusted peer (a balancer) is counted
   * under the client its PROXY header names, so nothing is counted until the prelude shows whether one came.
   */
  private identityPending: boolean;

  /** `verdict`: the peer's per-address limit, when another thread decides it (the client waits for it, paused). */
  constructor(
    private readonly conn: Connection,
    private readonly socket: Socket<Connection>,
    verdict: Promise<boolean> | null,
    trustedPeer: boolean,
  ) {
    const { ctx } = conn;
    this.identityPending = trustedPeer;
    this.prelude = new Prelude(trustedPeer, ctx.config.cancelFanout > 0);
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
    if (this.queuedBytes > MAX_QUEUED_BYTES) this.conn.close("refused_invalid", "client sent more than 1 MiB before its tunnel was ready", "queue_full");
  }

  /** The client closed: was it a balancer's health check (a PROXY header naming no client, then nothing)? */
  get healthCheck(): boolean {
    return this.prelude?.onlyHealthCheck === true;
  }

  /** Another thread's verdict on --max-conns-per-ip (worker mode), for the peer at accept or for the client a balancer named. */
  onVerdict(allowed: boolean): void {
    const { conn } = this;
    if (conn.state !== "admitting") return;
    const step = this.parked;
    this.parked = null;
    if (!allowed) return this.refuseLimit();
    conn.to("prelude");
    conn.client.resume();
    const queued = this.takeQueued();
    if (conn.proxySource !== undefined) conn.ctx.rekey(conn, conn.proxySource);
    if (step !== null) this.proceed(step);
    for (const chunk of queued) this.onClientData(chunk);
  }

  private onPreludeStep(step: PreludeStep): void {
    // A refusal counts under nobody: its summary says what was wrong with the input, not that a limit was full.
    if (this.identityPending && step.kind === "refuse") this.identityPending = false;
    if (this.identityPending && (step.kind !== "needMore" || this.prelude?.pastFirstByte === true)) {
      this.identityPending = false;
      const verdict = this.settleIdentity();
      if (verdict === false) return this.refuseLimit();
      if (verdict !== true) return this.park(step, verdict);
      if (this.conn.proxySource !== undefined) this.conn.ctx.rekey(this.conn, this.conn.proxySource);
    }
    this.proceed(step);
  }

  /**
   * Counts the connection under its client: the source a trusted PROXY header names, nobody for a header without one
   * (LOCAL health checks, UNKNOWN), the peer itself when no header came.
   */
  private settleIdentity(): Maybe<boolean> {
    const { conn } = this;
    const header = this.prelude?.received ?? null;
    if (header === null) return conn.ctx.admit(conn, conn.address);
    const source = header.source?.address;
    if (source === undefined) return true;
    conn.proxySource = source;
    return conn.ctx.admit(conn, source);
  }

  private park(step: PreludeStep, verdict: Promise<boolean>): void {
    const { conn } = this;
    this.parked = step;
    conn.to("admitting");
    conn.client.pause();
    verdict.then((allowed) => this.onVerdict(allowed), () => this.onVerdict(false));
  }

  /** Over --max-conns-per-ip: closed with nothing written, as at accept. */
  private refuseLimit(): void {
    const { conn } = this;
    const reason = conn.proxySource === undefined ? TOO_MANY_FROM_ADDRESS : TOO_MANY_FROM_SOURCE;
    conn.close("refused_limit", reason, "limit_per_ip");
  }

  private proceed(step: PreludeStep): void {
    if (step.reply !== null) this.conn.client.send(step.reply);
    this.afterSource(step);
  }

  private afterSource(step: PreludeStep): void {
    const { conn } = this;
    if (step.kind === "needMore") return;
    this.prelude = null;
    if (step.kind === "refuse") return conn.close(step.outcome, step.reason, step.code);
    conn.clearTimer();
    const received = step.proxyHeader;
    const header = outgoingHeader(conn.ctx.config, received?.bytes ?? null, () => this.endpoints(received));
    if (step.kind === "cancel") {
      const { client, local } = this.endpoints(received);
      conn.opening = null;
      return cancel(conn, header, { client: conn.key, clientPort: client.port, local, request: step.request.slice(), header: received?.bytes ?? null });
    }
    const { config } = conn.ctx;
    if (step.hello.serverName === null) {
      conn.client.send(config.onNoSni === "ok" ? OK_REPLY : ALERT_UNRECOGNIZED_NAME);
      return conn.close("refused_no_sni", "ClientHello has no server_name (SNI)", "no_sni");
    }
    const routed = route(step.hello.serverName, config.allowSniSuffix, config.hostnameTemplate);
    // An SNI that is not a hostname came from the wire as it is: logged cut (the logger escapes it).
    conn.sni = routed.kind === "invalid_sni" ? routed.sni.slice(0, MAX_LOGGED_SNI) : routed.sni;
    if (routed.kind !== "ok") {
      conn.client.send(ALERT_UNRECOGNIZED_NAME);
      if (routed.kind === "not_allowed") return conn.close("refused_not_allowed", "SNI outside --allow-sni-suffix", "not_allowed");
      if (routed.kind === "invalid_sni") return conn.close("refused_invalid", "SNI is not a valid DNS hostname", "invalid_sni");
      return conn.close("refused_invalid", "--hostname-template makes no valid hostname of this SNI", "invalid_hostname");
    }
    conn.hostname = routed.hostname;
    this.handover = new Handover(conn, this, { replay: step.replay, header, sslRequest: step.sslRequest });
    conn.to("acquiring");
    const warm = conn.ctx.tunnels.tryAcquire(routed.hostname, conn);
    if (warm !== null) return conn.onLease(warm);
    conn.ctx.tunnels.acquire(routed.hostname, conn).then(
      (lease) => conn.onLease(lease),
      (error: Error) => conn.onAcquireFailed(error),
    );
  }

  /** The client and where it connected to: a PROXY header's source and destination, else the socket's own. */
  private endpoints(received: ProxyHeader | null): Endpoints {
    return {
      client: received?.source ?? { address: this.conn.address, port: this.socket.remotePort },
      local: received?.destination ?? { address: normaliseAddress(this.socket.localAddress), port: this.socket.localPort },
    };
  }

  onBackendOpen(socket: Socket<Connection>): void {
    this.handover?.onBackendOpen(socket);
  }

  onSslAnswer(chunk: Uint8Array): void {
    this.handover?.onSslAnswer(chunk);
  }

  /** Every chunk queued so far, in order; the queue is empty afterwards. */
  takeQueued(): Uint8Array[] {
    const queued = this.queued ?? [];
    this.queued = null;
    this.queuedBytes = 0;
    return queued;
  }
}

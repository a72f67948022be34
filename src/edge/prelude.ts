// The per-connection prelude state machine: PROXY header? → PostgreSQL prelude? → TLS ClientHello; pure, no sockets.
import { GrowableBuffer } from "../protocol/buffer.ts";
import { concat } from "../protocol/bytes.ts";
import { parseProxyV1, type ProxyV1Header } from "../protocol/proxy-v1.ts";
import { parseProxyV2, type ProxyV2Header } from "../protocol/proxy-v2.ts";
import { GSSENC_REFUSED, SSL_ACCEPTED, TLS_REQUIRED_ERROR, parsePostgresPrelude } from "../protocol/postgres.ts";
import { ALERT_UNRECOGNIZED_NAME, parseClientHelloRecords, type ClientHello } from "../protocol/tls.ts";
import { badPostgres, badProxyHeader, badTls, unexpectedByte } from "./refusal-reasons.ts";

export type ProxyHeader = ProxyV1Header | ProxyV2Header;

export type RefusalOutcome = "refused_invalid" | "refused_no_sni" | "refused_untrusted_proxy";

export type PreludeStep =
  | { readonly kind: "needMore"; readonly reply: Uint8Array | null }
  | {
      readonly kind: "refuse";
      readonly outcome: RefusalOutcome;
      /** Stable label for the refusals metric. */
      readonly code: string;
      readonly reason: string;
      readonly reply: Uint8Array | null;
    }
  | {
      readonly kind: "hello";
      readonly reply: Uint8Array | null;
      readonly hello: ClientHello;
      readonly proxyHeader: ProxyHeader | null;
      readonly sslRequest: boolean;
      /** The ClientHello records and every byte after them, in order (a view: the prelude is done with them). */
      readonly replay: Uint8Array;
    }
  | {
      /** A plaintext PostgreSQL CancelRequest, routed by client affinity. */
      readonly kind: "cancel";
      readonly reply: Uint8Array | null;
      readonly proxyHeader: ProxyHeader | null;
      /** The 16 bytes of the CancelRequest, to forward as they came. */
      readonly request: Uint8Array;
    };

type Phase = "first" | "afterProxy" | "afterGssenc" | "afterSslRequest";

const FIRST_BYTE_PROXY_V1 = 0x50;
const FIRST_BYTE_PROXY_V2 = 0x0d;
const FIRST_BYTE_POSTGRES = 0x00;
const FIRST_BYTE_TLS = 0x16;

/** Which inputs a phase accepts, by first byte. */
const ACCEPTS: Record<Phase, readonly number[]> = {
  first: [FIRST_BYTE_PROXY_V1, FIRST_BYTE_PROXY_V2, FIRST_BYTE_POSTGRES, FIRST_BYTE_TLS],
  afterProxy: [FIRST_BYTE_POSTGRES, FIRST_BYTE_TLS],
  afterGssenc: [FIRST_BYTE_POSTGRES],
  afterSslRequest: [FIRST_BYTE_TLS],
};

export class Prelude {
  private readonly buffer = new GrowableBuffer();
  private phase: Phase = "first";
  private proxyHeader: ProxyHeader | null = null;
  private sslRequest = false;
  private sawOtherFirstByte = false;

  /**
   * `trustedPeer`: whether the connecting peer may send a PROXY header. `routeCancels`: a plaintext CancelRequest is
   * handed to the connection (cancel routing is on) instead of being refused like any plaintext PostgreSQL message.
   */
  constructor(
    private readonly trustedPeer: boolean,
    private readonly routeCancels: boolean,
  ) {}

  get received(): ProxyHeader | null {
    return this.proxyHeader;
  }

  /**
   * A balancer's health check: a PROXY header that names no client (LOCAL, UNKNOWN) and nothing after it. Closing
   * now is what such a check does.
   */
  get onlyHealthCheck(): boolean {
    return this.phase === "afterProxy" && this.buffer.length === 0 && this.proxyHeader !== null && this.proxyHeader.source === null;
  }

  /** Whether it is known yet if a PROXY header came: one was parsed, or the first byte began something else. */
  get pastFirstByte(): boolean {
    return this.phase !== "first" || this.sawOtherFirstByte;
  }

  /** Bytes the prelude holds while it waits for more. */
  get heldBytes(): number {
    return this.buffer.capacity;
  }

  /**
   * Feeds one chunk. Bytes are parsed in place: the common case (a whole prelude in one chunk) copies nothing, and
   * only an incomplete remainder is kept in the buffer. The chunk must not be reused by the caller (Bun hands every
   * `data` call a fresh buffer).
   */
  feed(chunk: Uint8Array): PreludeStep {
    let bytes = chunk;
    if (this.buffer.length > 0) {
      this.buffer.append(chunk);
      bytes = this.buffer.view();
    }
    const replies: Uint8Array[] = [];
    for (;;) {
      const step = this.advance(bytes, replies);
      if (typeof step === "number") {
        bytes = bytes.subarray(step);
        continue;
      }
      if (step.kind === "needMore") this.buffer.replace(bytes);
      return step;
    }
  }

  /** One parse step over `bytes`: a final step, or how many bytes the step consumed before the next one. */
  private advance(bytes: Uint8Array, replies: Uint8Array[]): PreludeStep | number {
    const reply = replies.length === 0 ? null : replies.length === 1 ? (replies[0] as Uint8Array) : concat(replies);
    if (bytes.length === 0) return { kind: "needMore", reply };
    const first = bytes[0] as number;
    if (this.phase === "first" && first !== FIRST_BYTE_PROXY_V1 && first !== FIRST_BYTE_PROXY_V2) this.sawOtherFirstByte = true;
    if (!ACCEPTS[this.phase].includes(first)) return refuse("refused_invalid", "unexpected_byte", unexpectedByte(this.phase, first), reply);
    if (first === FIRST_BYTE_PROXY_V1 || first === FIRST_BYTE_PROXY_V2) {
      const result = first === FIRST_BYTE_PROXY_V1 ? parseProxyV1(bytes) : parseProxyV2(bytes);
      if (result.kind === "needMore") return { kind: "needMore", reply };
      const version = first === FIRST_BYTE_PROXY_V1 ? 1 : 2;
      if (result.kind === "invalid") return refuse("refused_invalid", `proxy_${result.code}`, badProxyHeader(version, result.code), reply);
      if (!this.trustedPeer) {
        return refuse("refused_untrusted_proxy", "untrusted_proxy", "PROXY header from a peer outside --trusted-proxies (TRUSTED_PROXIES)", reply);
      }
      const header = result.value;
      if (header.version === 2 && header.command === "PROXY" && !isStreamOrUnspec(header)) {
        return refuse("refused_invalid", "proxy_not_tcp", `PROXY v2 header carries ${header.family}/${header.transport}, not TCP`, reply);
      }
      this.proxyHeader = { ...header, bytes: header.bytes.slice() };
      this.phase = "afterProxy";
      return result.consumed;
    }
    if (first === FIRST_BYTE_POSTGRES) {
      const result = parsePostgresPrelude(bytes);
      if (result.kind === "needMore") return { kind: "needMore", reply };
      if (result.kind === "invalid") return refuse("refused_invalid", `postgres_${result.code}`, badPostgres(result.code), reply);
      switch (result.value) {
        case "SSLRequest":
          this.sslRequest = true;
          this.phase = "afterSslRequest";
          replies.push(SSL_ACCEPTED);
          return result.consumed;
        case "GSSENCRequest":
          this.phase = "afterGssenc";
          replies.push(GSSENC_REFUSED);
          return result.consumed;
        case "CancelRequest":
          if (!this.routeCancels) break;
          return { kind: "cancel", reply, proxyHeader: this.proxyHeader, request: bytes.subarray(0, result.consumed) };
        default:
          break;
      }
      return refuse("refused_no_sni", "postgres_plaintext", `PostgreSQL ${result.value} without TLS: the client must use sslmode=require or stronger`,
        concat([...replies, TLS_REQUIRED_ERROR]));
    }
    const result = parseClientHelloRecords(bytes);
    if (result.kind === "needMore") return { kind: "needMore", reply };
    if (result.kind === "invalid") {
      return refuse("refused_invalid", `tls_${result.code}`, badTls(result.code), concat([...replies, ALERT_UNRECOGNIZED_NAME]));
    }
    return {
      kind: "hello",
      reply,
      hello: result.value,
      proxyHeader: this.proxyHeader,
      sslRequest: this.sslRequest,
      replay: bytes,
    };
  }
}

function isStreamOrUnspec(header: ProxyV2Header): boolean {
  return header.family !== "UNIX" && header.transport !== "DGRAM";
}

function refuse(outcome: RefusalOutcome, code: string, reason: string, reply: Uint8Array | null): PreludeStep {
  return { kind: "refuse", outcome, code, reason, reply };
}

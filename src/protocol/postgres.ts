// PostgreSQL connection preludes (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage 3.0) and the fixed replies.
import { agreesWith, fromAscii, u32, writeU32 } from "./bytes.ts";
import { NEED_MORE, done, invalid, type ParseResult } from "./result.ts";

export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
export const PROTOCOL_3_0 = 196608;
const PRELUDE_HEADER_LENGTH = 8;
export const CANCEL_REQUEST_LENGTH = 16;
/** PostgreSQL's own cap on a startup packet. */
export const MAX_STARTUP_LENGTH = 10000;

export type PostgresPrelude = "SSLRequest" | "GSSENCRequest" | "CancelRequest" | "StartupMessage";
export type PostgresError = "bad_length" | "unknown_code";

function fixedRequest(code: number): Uint8Array {
  const out = new Uint8Array(PRELUDE_HEADER_LENGTH);
  writeU32(out, 0, PRELUDE_HEADER_LENGTH);
  writeU32(out, 4, code);
  return out;
}

export const SSL_REQUEST = fixedRequest(SSL_REQUEST_CODE);
export const SSL_ACCEPTED = fromAscii("S");
export const GSSENC_REFUSED = fromAscii("N");

/**
 * Classifies the prelude from its first 8 bytes. A StartupMessage is reported as soon as it is recognised (it cannot be
 * routed, so the rest of it is never needed; `consumed` covers the 8-byte header); a CancelRequest once its 16 bytes
 * (process id and secret key included) are in, as it is forwarded whole.
 */
export function parsePostgresPrelude(bytes: Uint8Array): ParseResult<PostgresPrelude, PostgresError> {
  if (bytes.length < PRELUDE_HEADER_LENGTH) {
    const error = prefixError(bytes);
    return error === null ? NEED_MORE : invalid(error);
  }
  const length = u32(bytes, 0);
  const code = u32(bytes, 4);
  switch (code) {
    case SSL_REQUEST_CODE:
      return length === PRELUDE_HEADER_LENGTH ? done("SSLRequest", PRELUDE_HEADER_LENGTH) : invalid("bad_length");
    case GSSENC_REQUEST_CODE:
      return length === PRELUDE_HEADER_LENGTH ? done("GSSENCRequest", PRELUDE_HEADER_LENGTH) : invalid("bad_length");
    case CANCEL_REQUEST_CODE:
      if (length !== CANCEL_REQUEST_LENGTH) return invalid("bad_length");
      return bytes.length < CANCEL_REQUEST_LENGTH ? NEED_MORE : done("CancelRequest", CANCEL_REQUEST_LENGTH);
    case PROTOCOL_3_0:
      return length >= PRELUDE_HEADER_LENGTH && length <= MAX_STARTUP_LENGTH
        ? done("StartupMessage", PRELUDE_HEADER_LENGTH)
        : invalid("bad_length");
    default:
      return invalid("unknown_code");
  }
}

const KNOWN_CODES = [SSL_REQUEST_CODE, GSSENC_REQUEST_CODE, CANCEL_REQUEST_CODE, PROTOCOL_3_0].map((code) => {
  const bytes = new Uint8Array(4);
  writeU32(bytes, 0, code);
  return bytes;
});

/** Why fewer than 8 bytes can no longer become a known prelude (a length outside 8..10000, an unknown code), or null. */
function prefixError(bytes: Uint8Array): PostgresError | null {
  const length = new Uint8Array(4);
  length.set(bytes.subarray(0, 4));
  const lowest = u32(length, 0);
  const highest = lowest + (bytes.length < 4 ? 0x100 ** (4 - bytes.length) - 1 : 0);
  if (lowest > MAX_STARTUP_LENGTH || highest < PRELUDE_HEADER_LENGTH) return "bad_length";
  const code = bytes.subarray(4);
  return KNOWN_CODES.some((known) => agreesWith(code, known)) ? null : "unknown_code";
}

/** A FATAL ErrorResponse (SQLSTATE 08P01, protocol_violation) carrying `message`. */
function errorResponse(message: string): Uint8Array {
  const fields = [
    ["S", "FATAL"],
    ["V", "FATAL"],
    ["C", "08P01"],
    ["M", message],
  ];
  const body = fields.map(([type, value]) => `${type}${value}\0`).join("") + "\0";
  const payload = fromAscii(body);
  const out = new Uint8Array(1 + 4 + payload.length);
  out[0] = 0x45;
  writeU32(out, 1, 4 + payload.length);
  out.set(payload, 5);
  return out;
}

export const TLS_REQUIRED_ERROR = errorResponse(
  "this endpoint routes by TLS SNI: connect with TLS and a host name (sslmode=require or stronger)",
);

// TLS: reassembles the ClientHello from handshake records (any number of records and chunks) and reads SNI and ALPN.
import { u16, u24, ascii } from "./bytes.ts";
import { NEED_MORE, done, invalid, type ParseResult } from "./result.ts";

export const RECORD_HEADER_LENGTH = 5;
export const CONTENT_TYPE_HANDSHAKE = 22;
export const CONTENT_TYPE_ALERT = 21;
/** RFC 8446 §5.2: a record's ciphertext may carry 2^14 + 2048 bytes; plaintext records are smaller still. */
export const MAX_RECORD_LENGTH = 16384 + 2048;
/** Largest ClientHello accepted (post-quantum key shares make 2 KiB normal). */
export const MAX_CLIENT_HELLO_LENGTH = 65536;
/** Bounds the work of re-scanning a hello split into many tiny records. */
export const MAX_HELLO_RECORDS = 512;
const HANDSHAKE_HEADER_LENGTH = 4;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const EXTENSION_ALPN = 16;
const NAME_TYPE_HOST_NAME = 0;
const RANDOM_LENGTH = 32;
const MAX_SESSION_ID_LENGTH = 32;

export interface ClientHello {
  /** The host_name entry of server_name, as sent (not yet normalised); null without one. */
  readonly serverName: string | null;
  readonly alpn: readonly string[];
  readonly helloLength: number;
}

export type TlsError =
  | "not_handshake"
  | "bad_version"
  | "record_too_long"
  | "empty_record"
  | "too_many_records"
  | "not_client_hello"
  | "hello_too_long"
  | "malformed_hello"
  | "malformed_extension"
  | "duplicate_extension"
  | "duplicate_server_name";

/** Checks a record header, possibly incomplete, at `offset`; returns the payload length or an error code. */
function recordHeader(bytes: Uint8Array, offset: number): number | TlsError | undefined {
  const available = bytes.length - offset;
  if (available >= 1 && bytes[offset] !== CONTENT_TYPE_HANDSHAKE) return "not_handshake";
  if (available >= 2 && bytes[offset + 1] !== 3) return "bad_version";
  if (available < RECORD_HEADER_LENGTH) return undefined;
  const length = u16(bytes, offset + 3);
  if (length > MAX_RECORD_LENGTH) return "record_too_long";
  if (length === 0) return "empty_record";
  return length;
}

export function parseClientHelloRecords(bytes: Uint8Array): ParseResult<ClientHello, TlsError> {
  const payloads: Uint8Array[] = [];
  let collected = 0;
  let needed = -1;
  let offset = 0;
  for (let records = 0; ; records++) {
    if (records >= MAX_HELLO_RECORDS) return invalid("too_many_records");
    const length = recordHeader(bytes, offset);
    if (typeof length === "string") return invalid(length);
    if (length === undefined) return NEED_MORE;
    const start = offset + RECORD_HEADER_LENGTH;
    const payload = bytes.subarray(start, Math.min(start + length, bytes.length));
    payloads.push(payload);
    collected += payload.length;
    if (needed < 0 && collected >= HANDSHAKE_HEADER_LENGTH) {
      const header = firstBytes(payloads, HANDSHAKE_HEADER_LENGTH);
      if (header[0] !== HANDSHAKE_CLIENT_HELLO) return invalid("not_client_hello");
      const helloLength = u24(header, 1);
      if (helloLength > MAX_CLIENT_HELLO_LENGTH) return invalid("hello_too_long");
      needed = HANDSHAKE_HEADER_LENGTH + helloLength;
    }
    if (payload.length < length) return NEED_MORE;
    offset = start + length;
    if (needed >= 0 && collected >= needed) {
      const message = firstBytes(payloads, needed);
      const hello = parseClientHello(message.subarray(HANDSHAKE_HEADER_LENGTH));
      return typeof hello === "string" ? invalid(hello) : done(hello, offset);
    }
  }
}

/** The first `count` bytes across `parts`, copied only when they span more than one part. */
function firstBytes(parts: readonly Uint8Array[], count: number): Uint8Array {
  const first = parts[0] as Uint8Array;
  if (first.length >= count) return first.subarray(0, count);
  const out = new Uint8Array(count);
  let offset = 0;
  for (const part of parts) {
    const take = Math.min(part.length, count - offset);
    out.set(part.subarray(0, take), offset);
    offset += take;
    if (offset === count) break;
  }
  return out;
}

/** Parses a ClientHello body (after the 4-byte handshake header). */
export function parseClientHello(body: Uint8Array): ClientHello | TlsError {
  const end = body.length;
  let p = 2 + RANDOM_LENGTH;
  if (p + 1 > end) return "malformed_hello";
  const sessionIdLength = body[p] as number;
  if (sessionIdLength > MAX_SESSION_ID_LENGTH) return "malformed_hello";
  p += 1 + sessionIdLength;
  if (p + 2 > end) return "malformed_hello";
  const cipherSuitesLength = u16(body, p);
  if (cipherSuitesLength < 2 || cipherSuitesLength % 2 !== 0) return "malformed_hello";
  p += 2 + cipherSuitesLength;
  if (p + 1 > end) return "malformed_hello";
  const compressionLength = body[p] as number;
  if (compressionLength < 1) return "malformed_hello";
  p += 1 + compressionLength;
  if (p > end) return "malformed_hello";
  if (p === end) return { serverName: null, alpn: [], helloLength: end };
  if (p + 2 > end) return "malformed_hello";
  const extensionsEnd = p + 2 + u16(body, p);
  if (extensionsEnd !== end) return "malformed_hello";
  return parseExtensions(body, p + 2, end);
}

function parseExtensions(body: Uint8Array, start: number, end: number): ClientHello | TlsError {
  const seen = new Set<number>();
  let serverName: string | null = null;
  let alpn: string[] = [];
  for (let p = start; p < end; ) {
    if (p + 4 > end) return "malformed_extension";
    const type = u16(body, p);
    const length = u16(body, p + 2);
    const dataStart = p + 4;
    const dataEnd = dataStart + length;
    if (dataEnd > end) return "malformed_extension";
    if (seen.has(type)) return "duplicate_extension";
    seen.add(type);
    if (type === EXTENSION_SERVER_NAME) {
      const name = parseServerName(body, dataStart, dataEnd);
      if (typeof name !== "string" && name !== null) return name.error;
      serverName = name;
    } else if (type === EXTENSION_ALPN) {
      const protocols = parseAlpn(body, dataStart, dataEnd);
      if (protocols === undefined) return "malformed_extension";
      alpn = protocols;
    }
    p = dataEnd;
  }
  return { serverName, alpn, helloLength: end };
}

function parseServerName(body: Uint8Array, start: number, end: number): string | null | { error: TlsError } {
  if (end - start < 2 || start + 2 + u16(body, start) !== end) return { error: "malformed_extension" };
  let hostName: string | null = null;
  for (let p = start + 2; p < end; ) {
    if (p + 3 > end) return { error: "malformed_extension" };
    const nameType = body[p] as number;
    const length = u16(body, p + 1);
    if (length === 0 || p + 3 + length > end) return { error: "malformed_extension" };
    if (nameType === NAME_TYPE_HOST_NAME) {
      if (hostName !== null) return { error: "duplicate_server_name" };
      hostName = ascii(body, p + 3, p + 3 + length);
    }
    p += 3 + length;
  }
  return hostName;
}

function parseAlpn(body: Uint8Array, start: number, end: number): string[] | undefined {
  if (end - start < 2 || start + 2 + u16(body, start) !== end) return undefined;
  const protocols: string[] = [];
  for (let p = start + 2; p < end; ) {
    const length = body[p] as number;
    if (length === 0 || p + 1 + length > end) return undefined;
    protocols.push(ascii(body, p + 1, p + 1 + length));
    p += 1 + length;
  }
  return protocols;
}

/** RFC 8446 §5.1: every record but the first ClientHello carries legacy_record_version 0x0303. */
const ALERT_RECORD_VERSION = [3, 3] as const;
const ALERT_LEVEL_FATAL = 2;
const ALERT_LENGTH = 2;

/** A fatal TLS alert record, built once at load time. */
function fatalAlert(description: number): Uint8Array {
  return new Uint8Array([CONTENT_TYPE_ALERT, ...ALERT_RECORD_VERSION, 0, ALERT_LENGTH, ALERT_LEVEL_FATAL, description]);
}

/** RFC 6066 §3: the server does not recognise the name the client asked for (112). */
export const ALERT_UNRECOGNIZED_NAME = fatalAlert(112);
/** RFC 8446 §6.2: an error unrelated to the peer (80), here a tunnel that could not be reached. */
export const ALERT_INTERNAL_ERROR = fatalAlert(80);

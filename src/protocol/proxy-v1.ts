// PROXY protocol v1 header (`PROXY TCP4|TCP6|UNKNOWN ...\r\n`): parse, validate, keep the exact bytes; and build one.
import { agreesWith, ascii, fromAscii, indexOfCrlf } from "./bytes.ts";
import { NEED_MORE, done, invalid, type ParseResult } from "./result.ts";
import { formatIPv6, normaliseAddress, parseIPv4, parseIPv6, type Endpoint } from "./address.ts";

/** The longest v1 header the spec allows, CRLF included. */
export const PROXY_V1_MAX_LENGTH = 107;
const PREFIX = fromAscii("PROXY ");
/** Spec §2.1: decimal 0–65535, no leading zeros (they read as octal elsewhere). */
const PORT = /^(?:0|[1-9]\d{0,4})$/;

export interface ProxyV1Header {
  readonly version: 1;
  readonly protocol: "TCP4" | "TCP6" | "UNKNOWN";
  readonly source: Endpoint | null;
  readonly destination: Endpoint | null;
  readonly bytes: Uint8Array;
}

export type ProxyV1Error = "bad_prefix" | "too_long" | "bad_character" | "bad_protocol" | "bad_fields" | "bad_address" | "bad_port";

function isPrintable(byte: number): boolean {
  return byte >= 0x20 && byte < 0x7f;
}

function port(text: string): number | undefined {
  return PORT.test(text) && Number(text) <= 65535 ? Number(text) : undefined;
}

/**
 * The address in canonical text (address.ts), or undefined. The protocol dictates the form (spec §2.1): TCP4 takes a
 * dotted quad only, TCP6 hex-and-colon text only (an IPv4-mapped one becomes its dotted quad); no zone ids.
 */
function address(protocol: "TCP4" | "TCP6", text: string): string | undefined {
  if (protocol === "TCP4") return parseIPv4(text) >= 0 ? text : undefined;
  const groups = parseIPv6(text);
  return groups === undefined ? undefined : formatIPv6(groups);
}

export function parseProxyV1(bytes: Uint8Array): ParseResult<ProxyV1Header, ProxyV1Error> {
  if (!agreesWith(bytes, PREFIX)) return invalid("bad_prefix");
  const end = indexOfCrlf(bytes, PROXY_V1_MAX_LENGTH);
  const scanned = end < 0 ? Math.min(bytes.length, PROXY_V1_MAX_LENGTH) : end;
  for (let i = PREFIX.length; i < scanned; i++) {
    const byte = bytes[i] as number;
    // A CR may end the window when its LF has not arrived yet (or would fall past the limit: too long).
    if (!isPrintable(byte) && !(byte === 0x0d && end < 0 && i === scanned - 1)) return invalid("bad_character");
  }
  if (end < 0) return bytes.length >= PROXY_V1_MAX_LENGTH ? invalid("too_long") : NEED_MORE;
  const fields = ascii(bytes, 0, end).split(" ");
  const protocol = fields[1];
  const consumed = end + 2;
  const headerBytes = bytes.subarray(0, consumed);
  if (protocol === "UNKNOWN") return done({ version: 1, protocol, source: null, destination: null, bytes: headerBytes }, consumed);
  if (protocol !== "TCP4" && protocol !== "TCP6") return invalid("bad_protocol");
  if (fields.length !== 6) return invalid("bad_fields");
  const [, , srcAddress, dstAddress, srcPortText, dstPortText] = fields as [string, string, string, string, string, string];
  const source = address(protocol, srcAddress);
  const destination = address(protocol, dstAddress);
  if (source === undefined || destination === undefined) return invalid("bad_address");
  const srcPort = port(srcPortText);
  const dstPort = port(dstPortText);
  if (srcPort === undefined || dstPort === undefined) return invalid("bad_port");
  return done(
    {
      version: 1,
      protocol,
      source: { address: source, port: srcPort },
      destination: { address: destination, port: dstPort },
      bytes: headerBytes,
    },
    consumed,
  );
}

/** `family` is the addresses' addressFamily(); they are written in canonical text. */
export function buildProxyV1(source: Endpoint, destination: Endpoint, family: 4 | 6 | 0): Uint8Array {
  if (family === 0) return fromAscii("PROXY UNKNOWN\r\n");
  const protocol = family === 4 ? "TCP4" : "TCP6";
  const [src, dst] = [normaliseAddress(source.address), normaliseAddress(destination.address)];
  return fromAscii(`PROXY ${protocol} ${src} ${dst} ${source.port} ${destination.port}\r\n`);
}

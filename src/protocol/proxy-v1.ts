// PROXY protocol v1 header (`PROXY TCP4|TCP6|UNKNOWN ...\r\n`): parse, validate, keep the exact bytes; and build one.
import { isIPv4, isIPv6 } from "node:net";
import { agreesWith, ascii, fromAscii, indexOfCrlf } from "./bytes.ts";
import { NEED_MORE, done, invalid, type ParseResult } from "./result.ts";
import type { Endpoint } from "./address.ts";

/** The longest v1 header the spec allows, CRLF included. */
export const PROXY_V1_MAX_LENGTH = 107;
const PREFIX = fromAscii("PROXY ");
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

export function parseProxyV1(bytes: Uint8Array): ParseResult<ProxyV1Header, ProxyV1Error> {
  if (!agreesWith(bytes, PREFIX)) return invalid("bad_prefix");
  const end = indexOfCrlf(bytes, PROXY_V1_MAX_LENGTH);
  const scanned = end < 0 ? Math.min(bytes.length, PROXY_V1_MAX_LENGTH) : end;
  for (let i = PREFIX.length; i < scanned; i++) {
    const byte = bytes[i] as number;
    if (!isPrintable(byte) && !(byte === 0x0d && i === bytes.length - 1)) return invalid("bad_character");
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
  const valid = protocol === "TCP4" ? isIPv4 : isIPv6;
  if (!valid(srcAddress) || !valid(dstAddress)) return invalid("bad_address");
  const srcPort = port(srcPortText);
  const dstPort = port(dstPortText);
  if (srcPort === undefined || dstPort === undefined) return invalid("bad_port");
  return done(
    {
      version: 1,
      protocol,
      source: { address: srcAddress, port: srcPort },
      destination: { address: dstAddress, port: dstPort },
      bytes: headerBytes,
    },
    consumed,
  );
}

export function buildProxyV1(source: Endpoint, destination: Endpoint, family: 4 | 6 | 0): Uint8Array {
  if (family === 0) return fromAscii("PROXY UNKNOWN\r\n");
  const protocol = family === 4 ? "TCP4" : "TCP6";
  return fromAscii(`PROXY ${protocol} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`);
}

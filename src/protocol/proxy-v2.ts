// PROXY protocol v2 binary header: signature, version, command, family, addresses and TLVs; and build one.
import { agreesWith, u16, writeU16 } from "./bytes.ts";
import { NEED_MORE, done, invalid, type ParseResult } from "./result.ts";
import { ipv4FromBytes, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes, type Endpoint } from "./address.ts";

export const PROXY_V2_SIGNATURE = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
export const PROXY_V2_FIXED_LENGTH = 16;
/** Cap on the length field (addresses and TLVs). */
export const PROXY_V2_MAX_LENGTH = 4096;

const COMMANDS = ["LOCAL", "PROXY"] as const;
const FAMILIES = ["UNSPEC", "INET", "INET6", "UNIX"] as const;
const TRANSPORTS = ["UNSPEC", "STREAM", "DGRAM"] as const;
const ADDRESS_LENGTH = { UNSPEC: 0, INET: 12, INET6: 36, UNIX: 216 } as const;

export type ProxyV2Command = (typeof COMMANDS)[number];
export type ProxyV2Family = (typeof FAMILIES)[number];
export type ProxyV2Transport = (typeof TRANSPORTS)[number];

export interface ProxyV2Tlv {
  readonly type: number;
  readonly value: Uint8Array;
}

export interface ProxyV2Header {
  readonly version: 2;
  readonly command: ProxyV2Command;
  readonly family: ProxyV2Family;
  readonly transport: ProxyV2Transport;
  readonly source: Endpoint | null;
  readonly destination: Endpoint | null;
  readonly tlvs: readonly ProxyV2Tlv[];
  readonly bytes: Uint8Array;
}

export type ProxyV2Error = "bad_signature" | "bad_version" | "bad_command" | "bad_family" | "too_long" | "short_addresses" | "bad_tlv";

function parseTlvs(bytes: Uint8Array, start: number, end: number): ProxyV2Tlv[] | undefined {
  const tlvs: ProxyV2Tlv[] = [];
  let offset = start;
  while (offset < end) {
    if (end - offset < 3) return undefined;
    const length = u16(bytes, offset + 1);
    if (offset + 3 + length > end) return undefined;
    tlvs.push({ type: bytes[offset] as number, value: bytes.subarray(offset + 3, offset + 3 + length) });
    offset += 3 + length;
  }
  return tlvs;
}

function endpoints(bytes: Uint8Array, family: ProxyV2Family): [Endpoint, Endpoint] | [null, null] {
  const at = PROXY_V2_FIXED_LENGTH;
  if (family === "INET") {
    return [
      { address: ipv4FromBytes(bytes, at), port: u16(bytes, at + 8) },
      { address: ipv4FromBytes(bytes, at + 4), port: u16(bytes, at + 10) },
    ];
  }
  if (family === "INET6") {
    return [
      { address: ipv6FromBytes(bytes, at), port: u16(bytes, at + 32) },
      { address: ipv6FromBytes(bytes, at + 16), port: u16(bytes, at + 34) },
    ];
  }
  return [null, null];
}

export function parseProxyV2(bytes: Uint8Array): ParseResult<ProxyV2Header, ProxyV2Error> {
  if (!agreesWith(bytes, PROXY_V2_SIGNATURE)) return invalid("bad_signature");
  if (bytes.length < PROXY_V2_FIXED_LENGTH) {
    if (bytes.length > 12 && (bytes[12] as number) >> 4 !== 2) return invalid("bad_version");
    return NEED_MORE;
  }
  const versionCommand = bytes[12] as number;
  if (versionCommand >> 4 !== 2) return invalid("bad_version");
  const command = COMMANDS[versionCommand & 0x0f];
  if (command === undefined) return invalid("bad_command");
  const familyByte = bytes[13] as number;
  const family = FAMILIES[familyByte >> 4];
  const transport = TRANSPORTS[familyByte & 0x0f];
  if (family === undefined || transport === undefined) return invalid("bad_family");
  const length = u16(bytes, 14);
  if (length > PROXY_V2_MAX_LENGTH) return invalid("too_long");
  if (length < ADDRESS_LENGTH[family]) return invalid("short_addresses");
  const total = PROXY_V2_FIXED_LENGTH + length;
  if (bytes.length < total) return NEED_MORE;
  const tlvs = parseTlvs(bytes, PROXY_V2_FIXED_LENGTH + ADDRESS_LENGTH[family], total);
  if (tlvs === undefined) return invalid("bad_tlv");
  const [source, destination] = command === "PROXY" ? endpoints(bytes, family) : [null, null];
  const header: ProxyV2Header = { version: 2, command, family, transport, source, destination, tlvs, bytes: bytes.subarray(0, total) };
  return done(header, total);
}

export function buildProxyV2(source: Endpoint, destination: Endpoint, family: 4 | 6 | 0): Uint8Array {
  const addressLength = family === 4 ? 12 : family === 6 ? 36 : 0;
  const out = new Uint8Array(PROXY_V2_FIXED_LENGTH + addressLength);
  out.set(PROXY_V2_SIGNATURE, 0);
  out[12] = 0x21;
  out[13] = family === 4 ? 0x11 : family === 6 ? 0x21 : 0x00;
  writeU16(out, 14, addressLength);
  const at = PROXY_V2_FIXED_LENGTH;
  if (family === 4) {
    ipv4ToBytes(source.address, out, at);
    ipv4ToBytes(destination.address, out, at + 4);
    writeU16(out, at + 8, source.port);
    writeU16(out, at + 10, destination.port);
  } else if (family === 6) {
    ipv6ToBytes(source.address, out, at);
    ipv6ToBytes(destination.address, out, at + 16);
    writeU16(out, at + 32, source.port);
    writeU16(out, at + 34, destination.port);
  }
  return out;
}

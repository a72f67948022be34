// PROXY protocol v2 binary header: signature, version, command, family, addresses and TLVs; and build one.
import { agreesWith, u16, writeU16 } from "./bytes.ts";
import { NEED_MORE, done, invalid, type ParseResult } from "./result.ts";
import { ipv4FromBytes, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes, normaliseAddress, type Endpoint } from "./address.ts";

export const PROXY_V2_SIGNATURE = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
export const PROXY_V2_FIXED_LENGTH = 16;
const VERSION_COMMAND_AT = 12;
const FAMILY_AT = 13;
const LENGTH_AT = 14;
const VERSION_2 = 2;
/** The bytes a sender writes (spec §2.2): version 2 + PROXY, and the three family/transport bytes we send. */
const VERSION_2_PROXY = 0x21;
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;
const UNSPEC = 0x00;
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

/** A LOCAL header (a balancer's health check) reads family and transport UNSPEC, no addresses, no TLVs: ignored. */
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

/** Checks the fixed part as far as it has arrived, so a wrong byte is refused without waiting for the rest. */
function fixedPart(bytes: Uint8Array): ProxyV2Error | undefined {
  if (!agreesWith(bytes, PROXY_V2_SIGNATURE)) return "bad_signature";
  if (bytes.length <= VERSION_COMMAND_AT) return undefined;
  const versionCommand = bytes[VERSION_COMMAND_AT] as number;
  if (versionCommand >> 4 !== VERSION_2) return "bad_version";
  const command = COMMANDS[versionCommand & 0x0f];
  if (command === undefined) return "bad_command";
  if (command === "LOCAL" || bytes.length <= FAMILY_AT) return undefined;
  const familyByte = bytes[FAMILY_AT] as number;
  if (FAMILIES[familyByte >> 4] === undefined || TRANSPORTS[familyByte & 0x0f] === undefined) return "bad_family";
  return undefined;
}

export function parseProxyV2(bytes: Uint8Array): ParseResult<ProxyV2Header, ProxyV2Error> {
  const error = fixedPart(bytes);
  if (error !== undefined) return invalid(error);
  if (bytes.length < PROXY_V2_FIXED_LENGTH) return NEED_MORE;
  const length = u16(bytes, LENGTH_AT);
  if (length > PROXY_V2_MAX_LENGTH) return invalid("too_long");
  const total = PROXY_V2_FIXED_LENGTH + length;
  const command = COMMANDS[(bytes[VERSION_COMMAND_AT] as number) & 0x0f] as ProxyV2Command;
  if (command === "LOCAL") {
    // Spec §2.2: for LOCAL the receiver ignores the family and discards the block, whatever its length.
    if (bytes.length < total) return NEED_MORE;
    const local: ProxyV2Header = {
      version: 2, command, family: "UNSPEC", transport: "UNSPEC", source: null, destination: null, tlvs: [], bytes: bytes.subarray(0, total),
    };
    return done(local, total);
  }
  const familyByte = bytes[FAMILY_AT] as number;
  const family = FAMILIES[familyByte >> 4] as ProxyV2Family;
  const transport = TRANSPORTS[familyByte & 0x0f] as ProxyV2Transport;
  if (length < ADDRESS_LENGTH[family]) return invalid("short_addresses");
  if (bytes.length < total) return NEED_MORE;
  const tlvs = parseTlvs(bytes, PROXY_V2_FIXED_LENGTH + ADDRESS_LENGTH[family], total);
  if (tlvs === undefined) return invalid("bad_tlv");
  const [source, destination] = endpoints(bytes, family);
  const header: ProxyV2Header = { version: 2, command, family, transport, source, destination, tlvs, bytes: bytes.subarray(0, total) };
  return done(header, total);
}

/** `family` is the addresses' addressFamily(); an IPv4-mapped address is written as IPv4. */
export function buildProxyV2(source: Endpoint, destination: Endpoint, family: 4 | 6 | 0): Uint8Array {
  const addressLength = family === 4 ? ADDRESS_LENGTH.INET : family === 6 ? ADDRESS_LENGTH.INET6 : ADDRESS_LENGTH.UNSPEC;
  const out = new Uint8Array(PROXY_V2_FIXED_LENGTH + addressLength);
  out.set(PROXY_V2_SIGNATURE, 0);
  out[VERSION_COMMAND_AT] = VERSION_2_PROXY;
  out[FAMILY_AT] = family === 4 ? TCP_OVER_IPV4 : family === 6 ? TCP_OVER_IPV6 : UNSPEC;
  writeU16(out, LENGTH_AT, addressLength);
  const at = PROXY_V2_FIXED_LENGTH;
  if (family === 4) {
    ipv4ToBytes(normaliseAddress(source.address), out, at);
    ipv4ToBytes(normaliseAddress(destination.address), out, at + 4);
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

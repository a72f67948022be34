// IP addresses as PROXY headers, sockets and logs carry them: strict text parsing, one canonical text form, bytes.
import { writeU16 } from "./bytes.ts";

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

const IPV6_GROUPS = 8;
/** `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`, the longest valid IPv6 text. */
const MAX_IPV6_TEXT_LENGTH = 45;
const MAPPED_PREFIX = "::ffff:";
const CHAR_0 = 0x30;
const CHAR_9 = 0x39;
const CHAR_DOT = 0x2e;
const CHAR_COLON = 0x3a;

/**
 * A dotted quad as the PROXY spec (§2.1) writes it: exactly four decimal numbers 0–255, no leading zeros (they read
 * as octal elsewhere), nothing else. Reads `text` from `start` to `end`; returns the 32-bit value, or -1.
 */
export function parseIPv4(text: string, start = 0, end = text.length): number {
  let value = 0;
  let octets = 0;
  let i = start;
  while (octets < 4) {
    const first = i;
    let octet = 0;
    while (i < end && i - first < 3) {
      const c = text.charCodeAt(i);
      if (c < CHAR_0 || c > CHAR_9) break;
      octet = octet * 10 + (c - CHAR_0);
      i++;
    }
    const digits = i - first;
    if (digits === 0 || octet > 255 || (digits > 1 && text.charCodeAt(first) === CHAR_0)) return -1;
    value = value * 256 + octet;
    octets++;
    if (octets < 4) {
      if (i >= end || text.charCodeAt(i) !== CHAR_DOT) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}

function hexDigit(c: number): number {
  if (c >= CHAR_0 && c <= CHAR_9) return c - CHAR_0;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * IPv6 text (RFC 4291 §2.2): groups of 1–4 hex digits in either case, at most one `::`, an optional dotted quad in
 * the last 32 bits, 128 bits in all. Zone ids (`%eth0`) and anything else are refused. Returns the 8 groups.
 */
export function parseIPv6(text: string): number[] | undefined {
  const end = text.length;
  if (end < 2 || end > MAX_IPV6_TEXT_LENGTH) return undefined;
  const groups: number[] = [];
  let gapAt = -1;
  let i = 0;
  if (text.charCodeAt(0) === CHAR_COLON) {
    if (text.charCodeAt(1) !== CHAR_COLON) return undefined;
    gapAt = 0;
    i = 2;
  }
  while (i < end) {
    let fieldEnd = i;
    while (fieldEnd < end && text.charCodeAt(fieldEnd) !== CHAR_COLON) fieldEnd++;
    if (fieldEnd === end && text.indexOf(".", i) >= 0) {
      const v4 = parseIPv4(text, i, end);
      if (v4 < 0 || groups.length > IPV6_GROUPS - 2) return undefined;
      groups.push(Math.floor(v4 / 0x10000), v4 % 0x10000);
      break;
    }
    const digits = fieldEnd - i;
    if (digits === 0 || digits > 4 || groups.length === IPV6_GROUPS) return undefined;
    let group = 0;
    for (let k = i; k < fieldEnd; k++) {
      const digit = hexDigit(text.charCodeAt(k));
      if (digit < 0) return undefined;
      group = group * 16 + digit;
    }
    groups.push(group);
    if (fieldEnd === end) break;
    i = fieldEnd + 1;
    if (text.charCodeAt(i) === CHAR_COLON) {
      if (gapAt >= 0) return undefined;
      gapAt = groups.length;
      i++;
    } else if (i === end) {
      return undefined;
    }
  }
  if (gapAt < 0) return groups.length === IPV6_GROUPS ? groups : undefined;
  if (groups.length === IPV6_GROUPS) return undefined;
  const zeros = new Array<number>(IPV6_GROUPS - groups.length).fill(0);
  return [...groups.slice(0, gapAt), ...zeros, ...groups.slice(gapAt)];
}

function isIPv4Mapped(groups: readonly number[]): boolean {
  for (let i = 0; i < 5; i++) if (groups[i] !== 0) return false;
  return groups[5] === 0xffff;
}

/**
 * The canonical text of an IPv6 address, one per address: an IPv4-mapped address (`::ffff:0:0/96`) is its IPv4 dotted
 * quad, so one client has one key whichever way the listener or the balancer spelled it; any other is RFC 5952 text
 * (lower case, no leading zeros, the first longest run of two or more zero groups as `::`).
 */
export function formatIPv6(groups: readonly number[]): string {
  const g = (i: number) => groups[i] as number;
  if (isIPv4Mapped(groups)) return `${g(6) >> 8}.${g(6) & 0xff}.${g(7) >> 8}.${g(7) & 0xff}`;
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < IPV6_GROUPS; ) {
    let j = i;
    while (j < IPV6_GROUPS && g(j) === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/**
 * The canonical text of any IP address (see formatIPv6); text that is not an IP address is returned unchanged.
 * Runs for every accepted socket: an address without a colon (IPv4, already canonical) is returned as it is.
 */
export function normaliseAddress(address: string): string {
  if (address.indexOf(":") < 0) return address;
  if (address.startsWith(MAPPED_PREFIX) && parseIPv4(address, MAPPED_PREFIX.length) >= 0) return address.slice(MAPPED_PREFIX.length);
  const groups = parseIPv6(address);
  return groups === undefined ? address : formatIPv6(groups);
}

/** The family of the address's canonical form (an IPv4-mapped IPv6 address is 4); 0 when it is not an IP address. */
export function addressFamily(address: string): 4 | 6 | 0 {
  if (parseIPv4(address) >= 0) return 4;
  const groups = parseIPv6(address);
  if (groups === undefined) return 0;
  return isIPv4Mapped(groups) ? 4 : 6;
}

export function ipv4FromBytes(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** Canonical text (formatIPv6) of 16 bytes in network order. */
export function ipv6FromBytes(bytes: Uint8Array, offset: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[offset + i] as number) << 8) | (bytes[offset + i + 1] as number));
  return formatIPv6(groups);
}

/** Writes a dotted quad as 4 bytes; the caller has checked it (addressFamily). */
export function ipv4ToBytes(address: string, out: Uint8Array, offset: number): void {
  const value = parseIPv4(address);
  writeU16(out, offset, Math.floor(value / 0x10000));
  writeU16(out, offset + 2, value % 0x10000);
}

/** Writes IPv6 text as 16 bytes; the caller has checked it (addressFamily). */
export function ipv6ToBytes(address: string, out: Uint8Array, offset: number): void {
  const groups = parseIPv6(address) ?? [];
  groups.forEach((group, i) => writeU16(out, offset + 2 * i, group));
}

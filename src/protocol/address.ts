// Addresses as PROXY headers and logs carry them: IPv4 dotted quads and IPv6 text, from and to bytes.
import { isIPv4, isIPv6 } from "node:net";

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export function ipv4FromBytes(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

export function ipv6FromBytes(bytes: Uint8Array, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[offset + i] as number) << 8) | (bytes[offset + i + 1] as number)).toString(16));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (bestStart < 0) return groups.join(":");
  const head = groups.slice(0, bestStart).join(":");
  const tail = groups.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

/** `::ffff:a.b.c.d` (how a dual-stack listener reports IPv4 clients) becomes `a.b.c.d`. */
export function normaliseAddress(address: string): string {
  return address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

export function ipv4ToBytes(address: string, out: Uint8Array, offset: number): void {
  address.split(".").forEach((part, i) => (out[offset + i] = Number(part)));
}

export function ipv6ToBytes(address: string, out: Uint8Array, offset: number): void {
  const [head = "", tail] = address.split("::") as [string, string | undefined];
  const parse = (text: string) => (text === "" ? [] : text.split(":"));
  const headGroups = parse(head);
  const tailGroups = tail === undefined ? [] : parse(tail);
  const groups = [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    out[offset + 2 * i] = value >>> 8;
    out[offset + 2 * i + 1] = value & 0xff;
  });
}

export function addressFamily(address: string): 4 | 6 | 0 {
  if (isIPv4(address)) return 4;
  return isIPv6(address) && !address.includes(".") ? 6 : 0;
}

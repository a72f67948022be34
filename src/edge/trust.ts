// `--trusted-proxies`: which peers may send a PROXY header, matched with node:net BlockList.
import { BlockList, isIPv4, isIPv6 } from "node:net";
import type { TrustedProxies } from "../config/options.ts";

export function trustChecker(trusted: TrustedProxies): (address: string) => boolean {
  if (trusted.any) return () => true;
  if (trusted.entries.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of trusted.entries) {
    const [address = "", prefix] = entry.split("/");
    const type = isIPv4(address) ? "ipv4" : "ipv6";
    list.addSubnet(address, prefix === undefined ? (type === "ipv4" ? 32 : 128) : Number(prefix), type);
  }
  return (address) => {
    if (isIPv4(address)) return list.check(address, "ipv4");
    return isIPv6(address) && list.check(address, "ipv6");
  };
}

// `--send-proxy v1|v2`: a PROXY header built from the real client address for connections that came without one.
import { addressFamily } from "../protocol/address.ts";
import { buildProxyV1 } from "../protocol/proxy-v1.ts";
import { buildProxyV2 } from "../protocol/proxy-v2.ts";

export interface Addresses {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export function generatedProxyHeader(mode: "off" | "v1" | "v2", addresses: Addresses): Uint8Array | null {
  if (mode === "off") return null;
  const source = { address: addresses.clientAddress, port: addresses.clientPort };
  const destination = { address: addresses.localAddress, port: addresses.localPort };
  const sourceFamily = addressFamily(source.address);
  const family = sourceFamily !== 0 && sourceFamily === addressFamily(destination.address) ? sourceFamily : 0;
  return mode === "v1" ? buildProxyV1(source, destination, family) : buildProxyV2(source, destination, family);
}

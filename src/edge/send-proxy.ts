// The PROXY header a tunnel connection (or a cancel forward) starts with: a received one as it came, or with
// --proxy-replay off or none received, one --send-proxy builds from the real client and the address it reached.
import { addressFamily } from "../protocol/address.ts";
import { buildProxyV1 } from "../protocol/proxy-v1.ts";
import { buildProxyV2 } from "../protocol/proxy-v2.ts";
import type { Config } from "../config/load.ts";

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Who connected and where to: the PROXY header's source and destination when one came, else the socket's. */
export interface Endpoints {
  readonly client: Endpoint;
  readonly local: Endpoint;
}

export function generatedProxyHeader(mode: "v1" | "v2", { client, local }: Endpoints): Uint8Array {
  const sourceFamily = addressFamily(client.address);
  const family = sourceFamily !== 0 && sourceFamily === addressFamily(local.address) ? sourceFamily : 0;
  return mode === "v1" ? buildProxyV1(client, local, family) : buildProxyV2(client, local, family);
}

/** `endpoints` is called only when a header has to be generated: reading a socket's addresses costs system calls. */
export function outgoingHeader(
  config: Pick<Config, "sendProxy" | "proxyReplay">,
  received: Uint8Array | null,
  endpoints: () => Endpoints,
): Uint8Array | null {
  if (received !== null && config.proxyReplay) return received;
  return config.sendProxy === "off" ? null : generatedProxyHeader(config.sendProxy, endpoints());
}

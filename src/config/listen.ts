// Listen addresses: `:PORT` (every interface), `HOST:PORT`, `[IPv6]:PORT`.
import { isIP } from "node:net";

export interface ListenAddress {
  /** Address to bind; `::` (dual-stack, every interface) for `:PORT`. */
  readonly host: string;
  readonly port: number;
  readonly text: string;
}

const HOSTNAME = /^[A-Za-z0-9.-]+$/;

function parsePort(text: string, lowest = 1): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= lowest && port <= 65535 ? port : undefined;
}

export function parseListenAddress(text: string): ListenAddress | undefined {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  let host: string;
  let portText: string;
  if (bracketed) {
    host = bracketed[1] as string;
    portText = bracketed[2] as string;
    if (isIP(host) !== 6) return undefined;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host !== "" && isIP(host) !== 4 && !HOSTNAME.test(host)) return undefined;
  }
  // Port 0 asks the kernel for a free port (tests, ad-hoc runs); the "listening" log line reports the real one.
  const port = parsePort(portText, 0);
  if (port === undefined) return undefined;
  return { host: host === "" ? "::" : host, port, text };
}

// The admin HTTP server on --metrics-listen: /metrics, /healthz, /tunnels, and tunnel control (GET, POST, DELETE
// /tunnels/{hostname}) behind a bearer token or a loopback-only listener (DESIGN §4); never on the proxy's own port.
import type { Server } from "bun";
import { timingSafeEqual } from "node:crypto";
import { BlockList, isIP } from "node:net";
import type { ListenAddress } from "../config/listen.ts";
import { isValidHostname } from "../protocol/hostname.ts";
import { isProxyError } from "../errors.ts";
import type { TunnelControl, TunnelInfo } from "../supervisor/types.ts";
import { statusRoute } from "./status-page.ts";

export interface AdminSources {
  /** The exposition text; with edge workers it gathers their counters first. */
  readonly metrics: { render(): string | Promise<string> };
  readonly tunnels: () => readonly TunnelInfo[];
  readonly control: TunnelControl;
  readonly draining: () => boolean;
  /** --admin-token-file's content, trimmed; null without the flag. */
  readonly token: string | null;
  /** Whether the admin server is bound to a loopback address: without a token, only then may it start and stop tunnels. */
  readonly loopback: boolean;
  /** The document of GET /status, which the status page at GET / shows; without it both paths are 404. */
  readonly status?: () => Promise<unknown>;
}

const TUNNEL_PATH = "/tunnels/";
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** 127.0.0.0/8, ::1 (also IPv4-mapped, also in brackets) and `localhost`: a listener only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (bare === "localhost") return true;
  const family = isIP(bare);
  return family !== 0 && LOOPBACK.check(bare, family === 4 ? "ipv4" : "ipv6");
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers });
}

function methodNotAllowed(allow: string): Response {
  return new Response("method not allowed\n", { status: 405, headers: { allow } });
}

/** Equal-length buffers compared in constant time; a token of another length is simply wrong. */
function tokenMatches(presented: string, token: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Null when the request may change tunnels; else the refusal (401 without the right token, 403 off loopback). */
function refusal(request: Request, sources: AdminSources): Response | null {
  if (sources.token !== null) {
    const presented = /^Bearer (.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1] ?? "";
    if (tokenMatches(presented, sources.token)) return null;
    return json(401, { error: "a valid Authorization: Bearer token (--admin-token-file) is required" }, { "www-authenticate": "Bearer" });
  }
  if (sources.loopback) return null;
  return json(403, { error: "tunnel control needs --admin-token-file when the admin server is not on a loopback address" });
}

async function tunnelRoute(request: Request, url: URL, sources: AdminSources): Promise<Response> {
  const method = request.method;
  if (!["GET", "HEAD", "POST", "DELETE"].includes(method)) return methodNotAllowed("GET, HEAD, POST, DELETE");
  let hostname: string;
  try {
    hostname = decodeURIComponent(url.pathname.slice(TUNNEL_PATH.length)).toLowerCase();
  } catch {
    hostname = "";
  }
  if (method === "GET" || method === "HEAD") {
    const info = sources.control.info(hostname);
    return info === null ? json(404, { error: `no tunnel ${hostname}` }) : json(200, info);
  }
  const refused = refusal(request, sources);
  if (refused !== null) return refused;
  if (method === "POST") {
    if (!isValidHostname(hostname)) return json(400, { error: `not a valid tunnel hostname: ${JSON.stringify(hostname)}` });
    try {
      return json(200, await sources.control.start(hostname, { pin: url.searchParams.get("pin") === "true" }));
    } catch (error) {
      if (!isProxyError(error)) throw error;
      return json(503, { error: error.message });
    }
  }
  const result = await sources.control.stop(hostname, { force: url.searchParams.get("force") === "true" });
  if (result === "unknown") return json(404, { error: `no tunnel ${hostname}` });
  if (result === "in_use") return json(409, { error: `tunnel ${hostname} carries connections; ?force=true closes them` });
  return json(200, { hostname, state: "stopped" });
}

export async function handleAdmin(request: Request, sources: AdminSources): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname.startsWith(TUNNEL_PATH)) return tunnelRoute(request, url, sources);
  if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowed("GET, HEAD");
  switch (url.pathname) {
    case "/metrics":
      return new Response(await sources.metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    case "/healthz":
      return sources.draining() ? new Response("draining\n", { status: 503 }) : new Response("ok\n");
    case "/tunnels":
      return Response.json(sources.tunnels());
    case "/":
    case "/status":
      if (sources.status === undefined) return new Response("not found\n", { status: 404 });
      return statusRoute(url.pathname, sources.status);
    default:
      return new Response("not found\n", { status: 404 });
  }
}

/** `reusePort`: an upgrade's new process shares the admin address with the old one (--reuse-port). */
export function startAdmin(address: ListenAddress, sources: AdminSources, reusePort: boolean): Server<undefined> {
  return Bun.serve({ hostname: address.host, port: address.port, reusePort, fetch: (request) => handleAdmin(request, sources) });
}

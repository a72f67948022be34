// The admin HTTP server on --metrics-listen: the status page (/ and /status), /metrics, /healthz, /tunnels, and tunnel
// control (GET, POST, DELETE /tunnels/{hostname}) behind the guards of admin-guard.ts; never on the proxy's own port.
import type { Server } from "bun";
import type { ListenAddress } from "../config/listen.ts";
import { isAllowed, isValidHostname } from "../protocol/hostname.ts";
import { isProxyError } from "../errors.ts";
import type { TunnelControl, TunnelInfo } from "../supervisor/types.ts";
import { refuseControl, refuseHost, type GuardConfig, type Refusal } from "./admin-guard.ts";
import type { Logger } from "./log.ts";
import { statusRoute } from "./status-page.ts";

export { isLoopbackHost } from "./admin-guard.ts";

export interface AdminSources extends GuardConfig {
  /** The exposition text; with edge workers it gathers their counters first. */
  readonly metrics: { render(): string | Promise<string> };
  readonly tunnels: () => readonly TunnelInfo[];
  readonly control: TunnelControl;
  /** Why the proxy is not healthy now (draining, an edge down), or null. */
  readonly unhealthy: () => string | null;
  /** --allow-sni-suffix: tunnel hostnames tunnel control may start (empty: any). */
  readonly allowSniSuffix: readonly string[];
  readonly log: Logger;
  /** The document of GET /status, which the status page at GET / shows; without it both paths are 404. */
  readonly status?: () => Promise<unknown>;
  /** The fleet's live members, read from Redis now; without a fleet, /fleet is 404. */
  readonly fleet?: () => Promise<readonly unknown[]>;
}

const TUNNEL_PATH = "/tunnels/";
const BOOLEAN = new Map([["true", true], ["false", false]]);

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers });
}

function methodNotAllowed(allow: string): Response {
  return new Response("method not allowed\n", { status: 405, headers: { allow } });
}

function refused(refusal: Refusal, request: Request, url: URL, sources: AdminSources, peer: string | undefined): Response {
  sources.log.warn("admin request refused", { remote: peer, method: request.method, path: url.pathname, status: refusal.status, why: refusal.why });
  const headers: Record<string, string> = refusal.status === 401 ? { "www-authenticate": "Bearer" } : {};
  return json(refusal.status, { error: refusal.error }, headers);
}

/** `?name=true|false`: undefined when absent, null when it is anything else. */
function flag(url: URL, name: string): boolean | undefined | null {
  const value = url.searchParams.get(name);
  return value === null ? undefined : (BOOLEAN.get(value) ?? null);
}

async function tunnelRoute(request: Request, url: URL, sources: AdminSources, peer: string | undefined): Promise<Response> {
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
  const refusal = refuseControl(request, sources);
  if (refusal !== null) return refused(refusal, request, url, sources, peer);
  const name = method === "POST" ? "pin" : "force";
  const value = flag(url, name);
  if (value === null) return json(400, { error: `?${name}= takes true or false` });
  if (method === "DELETE") return stop(hostname, value === true, sources);
  if (!isValidHostname(hostname)) return json(400, { error: `not a valid tunnel hostname: ${JSON.stringify(hostname)}` });
  if (!isAllowed(hostname, sources.allowSniSuffix)) {
    return refused({ status: 403, error: `${hostname} is outside --allow-sni-suffix`, why: "hostname outside --allow-sni-suffix" }, request, url, sources, peer);
  }
  try {
    const result = await sources.control.start(hostname, value === undefined ? {} : { pin: value });
    return json(result.kind === "ready" ? 200 : 202, result.info);
  } catch (error) {
    if (!isProxyError(error)) throw error;
    return json(503, { error: error.message });
  }
}

async function stop(hostname: string, force: boolean, sources: AdminSources): Promise<Response> {
  const result = await sources.control.stop(hostname, { force });
  if (result === "unknown") return json(404, { error: `no tunnel ${hostname}` });
  if (result === "in_use") return json(409, { error: `tunnel ${hostname} carries connections; ?force=true closes them` });
  return json(200, { hostname, state: "stopped" });
}

async function fleetRoute(sources: AdminSources): Promise<Response> {
  if (sources.fleet === undefined) return json(404, { error: "no fleet is configured (--fleet-redis)" });
  try {
    return json(200, await sources.fleet());
  } catch (error) {
    return json(503, { error: `the fleet's Redis cannot be read now: ${(error as Error).message}` });
  }
}

/** `peer`: the remote address, for the log line of a refusal. */
export async function handleAdmin(request: Request, sources: AdminSources, peer?: string): Promise<Response> {
  const url = new URL(request.url);
  const badHost = refuseHost(request, sources);
  if (badHost !== null) return refused(badHost, request, url, sources, peer);
  if (url.pathname.startsWith(TUNNEL_PATH)) return tunnelRoute(request, url, sources, peer);
  if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowed("GET, HEAD");
  switch (url.pathname) {
    case "/metrics":
      return new Response(await sources.metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    case "/healthz": {
      const problem = sources.unhealthy();
      return problem === null ? new Response("ok\n") : new Response(`${problem}\n`, { status: 503 });
    }
    case "/tunnels":
      return Response.json(sources.tunnels());
    case "/fleet":
      return fleetRoute(sources);
    case "/":
    case "/status":
      if (sources.status === undefined) return new Response("not found\n", { status: 404 });
      return statusRoute(url.pathname, sources.status);
    default:
      return new Response("not found\n", { status: 404 });
  }
}

/**
 * `reusePort`: an upgrade's new process shares the admin address with the old one (--reuse-port). A POST or DELETE
 * waits for a start or a stop as long as that takes: its request is never cut by the server's idle timeout.
 */
export function startAdmin(address: ListenAddress, sources: AdminSources, reusePort: boolean): Server<undefined> {
  return Bun.serve({
    hostname: address.host,
    port: address.port,
    reusePort,
    fetch(request, server) {
      if (request.method === "POST" || request.method === "DELETE") server.timeout(request, 0);
      return handleAdmin(request, sources, server.requestIP(request)?.address);
    },
  });
}

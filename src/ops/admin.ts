// The admin HTTP server on --metrics-listen: /metrics, /healthz, /tunnels; never on the proxy's own port.
import type { Server } from "bun";
import type { ListenAddress } from "../config/listen.ts";
import type { Metrics } from "./metrics.ts";
import type { TunnelInfo } from "../supervisor/tunnel.ts";

export interface AdminSources {
  readonly metrics: Metrics;
  readonly tunnels: () => readonly TunnelInfo[];
  readonly draining: () => boolean;
}

export function handleAdmin(request: Request, sources: AdminSources): Response {
  const { pathname } = new URL(request.url);
  if (request.method !== "GET" && request.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  switch (pathname) {
    case "/metrics":
      return new Response(sources.metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    case "/healthz":
      return sources.draining() ? new Response("draining\n", { status: 503 }) : new Response("ok\n");
    case "/tunnels":
      return Response.json(sources.tunnels());
    default:
      return new Response("not found\n", { status: 404 });
  }
}

export function startAdmin(address: ListenAddress, sources: AdminSources): Server<undefined> {
  return Bun.serve({ hostname: address.host, port: address.port, fetch: (request) => handleAdmin(request, sources) });
}

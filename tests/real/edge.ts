// A stand-in for Cloudflare's edge as `cloudflared access tcp` meets it: TLS on <address>:443, one WebSocket per
// tunnelled connection bridged to a backend, every request recorded, and on demand Access's answers to a client
// without credentials (the login redirect), a refusal, or sessions closed mid-stream.
import type { Server, ServerWebSocket } from "bun";
import { connect, type Socket } from "node:net";
import { testCerts } from "../helpers/certs.ts";

export interface EdgeRequest {
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly upgrade: boolean;
  /** The service token's headers as cloudflared sent them, null when absent. */
  readonly clientId: string | null;
  readonly clientSecret: string | null;
}

/** What the edge does for a hostname: carry it to a backend, answer as Access does without credentials, or 403. */
export type EdgeBehaviour =
  | { readonly kind: "bridge"; readonly port: number }
  /** `until`: answer nothing before it resolves, so a test can order the login after something of its own. */
  | { readonly kind: "login"; readonly until?: Promise<void> }
  | { readonly kind: "refuse" };


export interface Edge {
  readonly address: string;
  readonly requests: EdgeRequest[];
  /** Sets what the edge does for `host` (a tunnel hostname); a host without a behaviour gets 404. */
  route(host: string, behaviour: EdgeBehaviour): void;
  /** Open WebSocket sessions for `host`. */
  open(host: string): number;
  /** Closes `host`'s open sessions from the edge's side (close code 1001, going away), as an edge restart would. */
  cut(host: string): number;
  stop(): void;
}

/** The Access application's audience tag, as the login redirect carries it in `kid`. */
export const ACCESS_AUD = "4c3b2a1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";
/** Where Access sends a browser (or cloudflared's HEAD) that has no credentials for `host`. */
export const loginPath = (host: string) => `/cdn-cgi/access/login/${host}`;

/** A session's WebSocket: its tunnel hostname, its backend's port, and the connection to that backend once open. */
interface SessionData {
  readonly host: string;
  readonly port: number;
  backend: Socket | null;
}
type Socketed = ServerWebSocket<SessionData>;

/** Starts the edge on `address`:443 with the committed *.demo.test certificate; throws when the address is taken. */
export function startEdge(address: string): Edge {
  const behaviours = new Map<string, EdgeBehaviour>();
  const requests: EdgeRequest[] = [];
  const sessions = new Set<Socketed>();
  const certs = testCerts();
  const server: Server<SessionData> = Bun.serve({
    hostname: address,
    port: 443,
    tls: { key: certs.key, cert: certs.cert },
    async fetch(request, srv) {
      const url = new URL(request.url);
      const host = (request.headers.get("host") ?? url.hostname).replace(/:\d+$/, "");
      const upgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
      requests.push({
        method: request.method,
        host,
        path: url.pathname + url.search,
        upgrade,
        clientId: request.headers.get("cf-access-client-id"),
        clientSecret: request.headers.get("cf-access-client-secret"),
      });
      const behaviour = behaviours.get(host);
      if (behaviour === undefined) return new Response("no such application\n", { status: 404 });
      if (behaviour.kind === "refuse") return new Response("Forbidden\n", { status: 403 });
      if (behaviour.kind === "login") return behaviour.until?.then(() => accessRedirect(host, url.pathname)) ?? accessRedirect(host, url.pathname);
      if (!upgrade) return new Response("expected a WebSocket upgrade\n", { status: 400 });
      if (srv.upgrade(request, { data: { host, port: behaviour.port, backend: null } })) return undefined;
      return new Response("upgrade failed\n", { status: 400 });
    },
    websocket: {
      // cloudflared writes each chunk it reads as one binary message; large transfers need room for 64 KiB and more.
      maxPayloadLength: 16 * 1024 * 1024,
      perMessageDeflate: false,
      open(ws) {
        ws.binaryType = "uint8array";
        sessions.add(ws);
        ws.data.backend = bridge(ws);
      },
      message(ws, message) {
        const backend = ws.data.backend;
        if (backend === null || typeof message === "string") return;
        // Messages already read still arrive after pause(): one drain listener resumes them all.
        if (!backend.write(message) && !ws.isPaused) {
          ws.pause();
          backend.once("drain", () => ws.resume());
        }
      },
      drain(ws) {
        ws.data.backend?.resume();
      },
      close(ws) {
        sessions.delete(ws);
        // end(), not destroy(): a message that arrived just before the close (a CancelRequest, say) still reaches it.
        ws.data.backend?.end();
      },
    },
  });

  /** The backend's bytes go out as binary messages; the backend is paused while the WebSocket is backed up. */
  function bridge(ws: Socketed): Socket {
    const backend = connect({ host: "127.0.0.1", port: ws.data.port });
    backend.on("data", (chunk: Buffer) => {
      if (ws.send(chunk, false) === -1) backend.pause();
    });
    backend.on("error", () => backend.destroy());
    backend.on("close", () => ws.close(1000));
    return backend;
  }

  const of = (host: string) => [...sessions].filter((ws) => ws.data.host === host);
  return {
    address,
    requests,
    route: (host, behaviour) => void behaviours.set(host, behaviour),
    open: (host) => of(host).length,
    cut(host) {
      const cut = of(host);
      for (const ws of cut) ws.close(1001, "going away");
      return cut.length;
    },
    stop() {
      for (const ws of sessions) ws.terminate();
      server.stop(true);
    },
  };
}

/**
 * Access without credentials: anything on the application redirects (302) to its login path with the audience tag
 * in `kid`; the login path itself redirects on to the team's domain. cloudflared takes the redirect of its WebSocket
 * dial as the sign of Access, then HEADs the URL, stops at the login path's answer and reads `kid` from that URL and
 * the application's domain from its CF-Access-Domain header before it starts the browser login.
 */
function accessRedirect(host: string, path: string): Response {
  const location = path.startsWith(loginPath(host))
    ? `https://demo-team.cloudflareaccess.com${loginPath(host)}?kid=${ACCESS_AUD}`
    : `https://${host}${loginPath(host)}?kid=${ACCESS_AUD}&redirect_url=${encodeURIComponent(path)}`;
  return new Response(null, { status: 302, headers: { location, "cf-access-domain": host } });
}

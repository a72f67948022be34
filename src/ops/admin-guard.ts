// Who may use the admin server: a browser on the host must not (DNS rebinding, cross-origin POSTs), tunnel control
// needs the bearer token or a loopback-only listener. Each refusal is an answer and a reason to log.
import { createHash, timingSafeEqual } from "node:crypto";
import { BlockList, isIP } from "node:net";

export interface GuardConfig {
  /** --admin-token-file's content, trimmed; null without the flag. */
  readonly token: string | null;
  /** Whether the admin server is bound to a loopback address. */
  readonly loopback: boolean;
}

export interface Refusal {
  readonly status: 401 | 403;
  /** For the client. */
  readonly error: string;
  /** For the log: why, in a few words. */
  readonly why: string;
}

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

/** The host part of a Host header (`127.0.0.1:19090`, `[::1]:19090`, `localhost`). */
function hostOf(header: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(header);
  if (bracketed) return bracketed[1] as string;
  const colon = header.lastIndexOf(":");
  return colon >= 0 && header.indexOf(":") === colon ? header.slice(0, colon) : header;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest();

/** Compared as digests: equal length whatever was presented, so the time taken says nothing about the token. */
function tokenMatches(presented: string, token: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(token));
}

/**
 * On a loopback-bound server, a name other than a loopback address or `localhost` in Host is a browser led there by
 * DNS rebinding: refused, GET included. (No Host at all is no browser.)
 */
export function refuseHost(request: Request, config: GuardConfig): Refusal | null {
  if (!config.loopback) return null;
  const host = request.headers.get("host");
  if (host === null || isLoopbackHost(hostOf(host))) return null;
  return { status: 403, error: "this admin server answers only requests addressed to a loopback name", why: `Host ${JSON.stringify(host.slice(0, 100))} is not loopback` };
}

/** Null when the request may start and stop tunnels; else the refusal. */
export function refuseControl(request: Request, config: GuardConfig): Refusal | null {
  if (config.token !== null) {
    const presented = /^Bearer (.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
    if (presented !== undefined && tokenMatches(presented, config.token)) return null;
    return {
      status: 401,
      error: "a valid Authorization: Bearer token (--admin-token-file) is required",
      why: presented === undefined ? "no bearer token" : "wrong bearer token",
    };
  }
  if (!config.loopback) {
    return { status: 403, error: "tunnel control needs --admin-token-file when the admin server is not on a loopback address", why: "no token file and not loopback" };
  }
  // A bodiless cross-origin POST needs no preflight: a web page open on this host could send it.
  const origin = request.headers.get("origin");
  if (origin !== null && origin !== `http://${request.headers.get("host") ?? ""}`) {
    return { status: 403, error: "cross-origin tunnel control is refused", why: `Origin ${JSON.stringify(origin.slice(0, 100))} is not this server` };
  }
  return null;
}

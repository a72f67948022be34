// The fleet's names and its store's URL (redis:// or rediss://): strict validation, shared by the configuration and
// the fleet module, and the URL with its credentials hidden for logs and error messages.
import { parseIPv6 } from "../protocol/address.ts";

export type FleetUrlCheck = { readonly ok: string } | { readonly problem: string };

const SCHEME = /^(rediss?):\/\//i;
/**
 * RFC 3986 userinfo characters, `:` excluded from the user: anything else (`@`, `/`, `?`, `#`, spaces) must be
 * percent-encoded, so every reader of the URL (ours, Bun's) splits it at the same places.
 */
const USER = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;
const PASSWORD = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*$/;
const REG_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const PORT = /^[1-9]\d{0,4}$/;
/** Redis numbers its databases from 0; no sign, no leading zeros. */
const DATABASE = /^(?:0|[1-9]\d{0,8})$/;
/** Keys and channel names start with the fleet name: plain characters, no `:` (the separator) or glob characters. */
const TOKEN = /^[A-Za-z0-9._-]{1,64}$/;
/** A node id ends a key (`<name>:member:<id>`): `:` may appear, as in the default `<hostname>:<listen port>`. */
const NODE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const REDACTED = "***";

/** Whether `text` may be a fleet name: 1–64 letters, digits, `.`, `_` or `-`. */
export function isFleetToken(text: string): boolean {
  return TOKEN.test(text);
}

/** Whether `text` may be a node id: 1–128 letters, digits, `.`, `_`, `-` or `:`. */
export function isNodeId(text: string): boolean {
  return NODE_ID.test(text);
}

function checkHost(hostPort: string): string | null {
  let host = hostPort;
  let port: string | null = null;
  if (hostPort.startsWith("[")) {
    const close = hostPort.indexOf("]");
    if (close < 0) return "an IPv6 host needs its closing ]";
    host = hostPort.slice(1, close);
    const rest = hostPort.slice(close + 1);
    if (rest !== "" && !rest.startsWith(":")) return "only :port may follow an IPv6 host";
    if (rest !== "") port = rest.slice(1);
    if (parseIPv6(host) === undefined) return "the host in [ ] is not an IPv6 address";
  } else {
    const colon = hostPort.indexOf(":");
    if (colon >= 0) [host, port] = [hostPort.slice(0, colon), hostPort.slice(colon + 1)];
    if (host === "") return "the URL has no host";
    if (!REG_NAME.test(host)) return "the host must be a name, an IPv4 address or an IPv6 address in [ ]";
  }
  if (port !== null && !(PORT.test(port) && Number(port) <= 65535)) return "the port must be a number from 1 to 65535";
  return null;
}

function checkUserinfo(userinfo: string): string | null {
  const colon = userinfo.indexOf(":");
  const user = colon < 0 ? userinfo : userinfo.slice(0, colon);
  const password = colon < 0 ? "" : userinfo.slice(colon + 1);
  if (!USER.test(user) || !PASSWORD.test(password)) {
    return "the user and password must be percent-encoded (write @ / ? # % and spaces as %40 %2F %3F %23 %25 %20)";
  }
  return null;
}

/**
 * `redis[s]://[user[:password]@]host[:port][/db]`, strictly. The problem text never repeats any part of the input,
 * so it cannot leak the password whatever the input looks like.
 */
export function parseFleetUrl(text: string): FleetUrlCheck {
  const scheme = SCHEME.exec(text);
  if (scheme === null) return { problem: "the scheme must be redis:// or rediss://" };
  const rest = text.slice(scheme[0].length);
  const at = rest.lastIndexOf("@");
  const userinfo = at < 0 ? null : rest.slice(0, at);
  const afterUser = rest.slice(at + 1);
  if (userinfo !== null) {
    const problem = checkUserinfo(userinfo);
    if (problem !== null) return { problem };
  }
  if (/[?#]/.test(afterUser)) return { problem: "the URL may not have a query (?) or a fragment (#)" };
  const slash = afterUser.indexOf("/");
  const hostPort = slash < 0 ? afterUser : afterUser.slice(0, slash);
  const problem = checkHost(hostPort);
  if (problem !== null) return { problem };
  const database = slash < 0 ? "" : afterUser.slice(slash + 1);
  if (database !== "" && !DATABASE.test(database)) return { problem: "the path must be empty or /N, a database number" };
  return { ok: text };
}

/**
 * `text` with the user and the password replaced by `***` (`redis://***:***@host:6379/0`). Works on any text,
 * valid URL or not: everything between the scheme and the last `@` counts as credentials.
 */
export function redactUrl(text: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(text);
  const start = scheme === null ? 0 : scheme[0].length;
  const at = text.lastIndexOf("@");
  if (at < start) return text;
  const userinfo = text.slice(start, at);
  const colon = userinfo.indexOf(":");
  const hidden = colon < 0 ? REDACTED : `${colon === 0 ? "" : REDACTED}:${REDACTED}`;
  return text.slice(0, start) + hidden + text.slice(at);
}

/** The password as written in the URL and as decoded, for scrubbing it out of any text that might quote it. */
export function urlSecrets(text: string): string[] {
  const scheme = SCHEME.exec(text);
  const start = scheme === null ? 0 : scheme[0].length;
  const at = text.lastIndexOf("@");
  if (at < start) return [];
  const userinfo = text.slice(start, at);
  const password = userinfo.slice(userinfo.indexOf(":") + 1);
  if (password === "" || userinfo.indexOf(":") < 0) return [];
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // Not valid percent-encoding: the text as written is the only form there is.
  }
  return [...new Set([password, decoded])];
}

/** `text` with every occurrence of the URL's password replaced by `***`. */
export function scrubSecrets(text: string, url: string): string {
  let out = text;
  for (const secret of urlSecrets(url)) out = out.split(secret).join(REDACTED);
  return out;
}

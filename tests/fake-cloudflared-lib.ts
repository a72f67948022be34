// Parts of the fake cloudflared: its command line as the real `cloudflared access tcp` 2023.5.0 treats it (flags and
// aliases, usage errors on stdout with status 0, how a --url is refused or fails to listen), the shape of its log
// lines (tests/real/fake-matches-real.test.ts runs both and compares), and recording a PostgreSQL CancelRequest.
import { appendFileSync } from "node:fs";
import type { Socket } from "node:net";

/** The real one's log lines: time to the second in UTC, a level, the message. */
export const log = (level: string, text: string) => process.stderr.write(`${new Date().toISOString().replace(/\.\d{3}Z$/, "Z")} ${level} ${text}\n`);
/** Lines it writes without time or level (the login prompt, an error it ends with). */
export const bare = (text: string) => process.stderr.write(`${text}\n`);

/** A --url refused before the startup line: an error line, the error again bare, status 1. */
export function refuseUrl(why: string): never {
  log("ERR", `Error validating origin URL error="${why}"`);
  bare(`error validating origin URL: ${why}`);
  process.exit(1);
}

/** A listener that cannot be opened, after the startup line: the same pattern. */
export function listenerFailed(why: string): never {
  log("ERR", `Error on Websocket listener error="failed to start forwarding server: ${why}"`);
  bare(`failed to start forwarding server: ${why}`);
  process.exit(1);
}

/** Flags of `access tcp` that take a value, by every name the real one accepts, mapped to one key. */
const VALUE_FLAGS: Record<string, string> = {
  hostname: "hostname", "tunnel-host": "hostname", T: "hostname",
  url: "url", listener: "url", L: "url",
  destination: "destination", header: "header", H: "header",
  "service-token-id": "id", id: "id", "service-token-secret": "secret", secret: "secret",
  "log-directory": "logdir", logfile: "logdir", "log-level": "loglevel", loglevel: "loglevel",
};

export type Command =
  | { readonly kind: "run"; readonly hostname: string; readonly url: string }
  | { readonly kind: "usage"; readonly error: string | null };

/** Parses `access tcp [flags]` as Go's flag package does: one or two dashes, `=value` or the next argument. */
export function parseCommand(argv: readonly string[]): Command {
  if (argv[0] !== "access" || argv[1] !== "tcp") return { kind: "usage", error: `unknown command ${argv.slice(0, 2).join(" ")}` };
  const values: Record<string, string> = {};
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--" || !arg.startsWith("-")) break;
    const [name, inline] = arg.replace(/^--?/, "").split(/=(.*)/s, 2) as [string, string | undefined];
    if (name === "help" || name === "h") return { kind: "usage", error: null };
    const key = VALUE_FLAGS[name];
    if (key === undefined) return { kind: "usage", error: `flag provided but not defined: -${name}` };
    const value = inline ?? argv[++i];
    if (value === undefined) return { kind: "usage", error: `flag needs an argument: -${name}` };
    values[key] = value;
  }
  // Without a hostname the real one prints its usage, with no error line, and exits 0.
  if (!values.hostname) return { kind: "usage", error: null };
  return { kind: "run", hostname: values.hostname, url: values.url ?? "" };
}

/** The usage text on stdout (the real one's is longer; both start with an error line when there is one). */
export function usageText(error: string | null): string {
  const usage = "NAME:\n   cloudflared access tcp - (test stand-in)\n\nUSAGE:\n   cloudflared access tcp --hostname HOST --url 127.0.0.1:PORT\n";
  return error === null ? usage : `Incorrect Usage: ${error}\n\n${usage}`;
}

const SCHEMES = ["http", "https", "rdp", "ssh", "smb", "tcp"];

export type UrlCheck =
  /** Refused before the startup line: `Error validating origin URL`. */
  | { readonly kind: "invalid"; readonly why: string }
  /** Accepted, but the listen fails after the startup line: `Error on Websocket listener`. */
  | { readonly kind: "unlistenable"; readonly address: string; readonly why: string }
  | { readonly kind: "ok"; readonly address: string; readonly host: string; readonly port: number };

/** What the real one does with a --url: a bad scheme or a port that is not a number is refused outright. */
export function checkUrl(url: string): UrlCheck {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(url);
  if (scheme !== null && !SCHEMES.includes((scheme[1] as string).toLowerCase())) return { kind: "invalid", why: `scheme ${scheme[1]} not supported` };
  const address = scheme === null ? url : (scheme[2] as string);
  const parts = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(.*))?$/.exec(address);
  if (parts === null) return { kind: "invalid", why: `URL ${url} is not host:port` };
  const [, host, port] = parts as unknown as [string, string, string | undefined];
  if (port === undefined) return { kind: "unlistenable", address, why: `listen tcp: address ${address}: missing port in address` };
  if (!/^\d+$/.test(port)) return { kind: "invalid", why: `URL ${url} has a port that is not a number` };
  if (Number(port) > 65535) return { kind: "unlistenable", address, why: `listen tcp: address ${port}: invalid port` };
  return { kind: "ok", address, host: host.replace(/^\[|\]$/g, ""), port: Number(port) };
}

const CANCEL_REQUEST_CODE = 80877102;
const PROXY_V1_MAX = 107;

/**
 * A CancelRequest's key at the start of `bytes` and where it starts (after a PROXY header), null when it is not one,
 * "more" to wait.
 */
function cancelKey(bytes: Buffer): { pid: number; secret: number; at: number } | null | "more" {
  let at = 0;
  if (bytes[0] === 0x50) {
    const end = bytes.indexOf("\r\n");
    if (end < 0) return bytes.length < PROXY_V1_MAX ? "more" : null;
    at = end + 2;
  } else if (bytes[0] === 0x0d) {
    if (bytes.length < 16) return "more";
    at = 16 + bytes.readUInt16BE(14);
  }
  if (bytes.length < at + 8) return "more";
  if (bytes.readUInt32BE(at) !== 16 || bytes.readUInt32BE(at + 4) !== CANCEL_REQUEST_CODE) return null;
  if (bytes.length < at + 16) return "more";
  return { pid: bytes.readInt32BE(at + 8), secret: bytes.readInt32BE(at + 12), at };
}

/**
 * Appends a cancel's key to `file` without taking part in serving the connection: `<pid> <secret> <header>`, the
 * header being the hex of the PROXY header that came first, or `-`.
 */
export function watchForCancel(client: Socket, file: string): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const key = cancelKey(seen);
    if (key === "more") return;
    client.off("data", onData);
    if (key !== null) appendFileSync(file, `${key.pid} ${key.secret} ${key.at === 0 ? "-" : seen.subarray(0, key.at).toString("hex")}\n`);
  };
  client.on("data", onData);
}

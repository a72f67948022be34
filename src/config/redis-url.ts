// `--fleet-redis`: a Redis/Valkey URL, checked before anything starts, and shown anywhere with its password hidden.
export interface RedisUrl {
  /** The URL as given: what the Redis client connects with. Never log it; log `redactUrl(text)`. */
  readonly text: string;
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly db: number;
}

const DEFAULT_PORT = 6379;
const DB_PATH = /^\/?(\d{0,9})$/;

export function parseRedisUrl(text: string): RedisUrl | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") return undefined;
  if (url.hostname === "" || url.search !== "" || url.hash !== "") return undefined;
  const port = url.port === "" ? DEFAULT_PORT : Number(url.port);
  const db = DB_PATH.exec(url.pathname);
  if (db === null || port < 1 || port > 65535) return undefined;
  return { text, tls: url.protocol === "rediss:", host: url.hostname, port, db: Number(db[1] || "0") };
}

/** The URL with its password replaced by `***`; text that does not parse is hidden after `//…:` the same way. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)[^@]*@/i, "$1***@");
}

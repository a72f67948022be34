// Seeded hostile requests to the admin server, as a web page, a rebound DNS name or a stray client would send them:
// random methods, paths, Host and Origin headers. What must never happen: a change made for a foreign page or name.
import { rng } from "./builders.ts";
import { rawHttp } from "./http.ts";

const METHODS = ["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS"];
const PATHS = ["/", "/status", "/metrics", "/healthz", "/tunnels", "/fleet", "/tunnels/cft-a.fuzz.test", "/tunnels/cft-a.fuzz.test?pin=true",
  "/tunnels/cft-a.fuzz.test?force=true", "/tunnels/cft-x.evil.test", "/tunnels/%00", "/tunnels/cft-a.fuzz.test?pin=yes", "/../../etc/passwd"];
const HOSTS = ["own", "localhost:PORT", "attacker.example:PORT", "127.0.0.1", "evil.example", "", "10.0.0.1:PORT", "[::1]:PORT"];
const ORIGINS = [null, "own", "http://attacker.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:PORT"];

export interface AdminFuzzResult {
  readonly requests: number;
  /** Requests from a foreign page or name that changed something (a 2xx to POST or DELETE): must stay empty. */
  readonly breaches: string[];
}

export async function fuzzAdmin(port: number, seed: number, count: number): Promise<AdminFuzzResult> {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const own = `127.0.0.1:${port}`;
  const breaches: string[] = [];
  for (let i = 0; i < count; i++) {
    const method = pick(METHODS);
    const path = pick(PATHS);
    const host = pick(HOSTS).replace("own", own).replace("PORT", String(port));
    const origin = pick(ORIGINS)?.replace("own", `http://${own}`).replace("PORT", String(port)) ?? null;
    const headers: Record<string, string> = host === "" ? {} : { host };
    if (origin !== null) headers.origin = origin;
    const response = await rawHttp(port, method, path, headers);
    const foreignHost = host !== "" && !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(host);
    const foreignOrigin = origin !== null && origin !== `http://${host}`;
    const changes = (method === "POST" || method === "DELETE") && response.status >= 200 && response.status < 300;
    if (changes && (foreignHost || foreignOrigin)) breaches.push(`${method} ${path} host=${host} origin=${origin} → ${response.status}`);
  }
  return { requests: count, breaches };
}

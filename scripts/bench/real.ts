// Cold starts through Cloudflare's real client (`--real-cloudflared PATH`). It binds its port within ~90 ms, and each
// accepted connection opens wss://<hostname> (port 443, certificate checked against SSL_CERT_FILE, the hostname
// resolved through /etc/hosts), then pipes the connection through that WebSocket. So the run starts an edge stand-in
// (go/edge.go: TLS + WebSocket on 443 of a loopback address, bridged to the backend's echo port) and the proxies run in
// a private mount namespace whose /etc/hosts maps the cold-start tunnel hostnames to it. The cloudflared stand-in
// (go/tunnel.go) hands those hostnames (cft-real-…) to the real binary, with a watcher that records its bind.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { peersBinary } from "./peers.ts";
import { firstLine, spawn, stopAndRemove } from "./processes.ts";
import { SUFFIX } from "./routes.ts";

/** A loopback address nothing else here is likely to serve 443 on. */
const EDGE_HOST = "127.0.99.1";

export interface RealCloudflared {
  /** SNIs whose tunnel hostnames (cft-<SNI>) go to the real client and resolve to the edge stand-in. */
  readonly snis: readonly string[];
  /** The argv that runs `argv` in the private mount namespace. */
  wrap(argv: readonly string[]): string[];
  /** Environment for the proxies: the real binary, the stand-in's CA, a service token (no interactive login). */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/** Starts the edge stand-in for `count` cold starts per route; null (with the reason logged) when it cannot run. */
export async function startRealCloudflared(binary: string, echoPort: number, count: number, log: (text: string) => void): Promise<RealCloudflared | null> {
  const missing = ["unshare", "mount", "sh"].filter((tool) => Bun.which(tool) === null);
  if (missing.length > 0 || process.getuid?.() !== 0) {
    log(`cold start with the real cloudflared skipped: it needs root and ${["unshare", "mount", "sh"].join(", ")} (missing: ${missing.join(", ") || "root"})`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "ttp-bench-edge-"));
  const stamp = Date.now();
  const snis = Array.from({ length: count }, (_, i) => `real-${i}-${stamp}.${SUFFIX}`);
  const hosts = join(dir, "hosts");
  writeFileSync(hosts, `${readFileSync("/etc/hosts", "utf8")}\n${snis.map((sni) => `${EDGE_HOST} cft-${sni}`).join("\n")}\n`);
  const ca = join(dir, "ca.pem");
  const edge = spawn([peersBinary(), "edge", "--listen", `${EDGE_HOST}:443`, "--target", String(echoPort), "--names", `*.${SUFFIX}`, "--ca", ca], {
    stderr: join(dir, "edge.log"),
  });
  try {
    if ((await firstLine(edge)) !== "ready") throw new Error("no ready line");
  } catch {
    log(`cold start with the real cloudflared skipped: the edge stand-in did not start (${readFileSync(join(dir, "edge.log"), "utf8").trim()})`);
    await stopAndRemove(edge, dir);
    return null;
  }
  return {
    snis,
    wrap: (argv) => ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts, ...argv],
    env: { BENCH_REAL_CLOUDFLARED: binary, SSL_CERT_FILE: ca, TUNNEL_SERVICE_TOKEN_ID: "bench", TUNNEL_SERVICE_TOKEN_SECRET: "bench" },
    stop: () => stopAndRemove(edge, dir),
  };
}

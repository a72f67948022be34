// What the fleet's end-to-end tests share: proxies joined to one fleet on a real redis-server, sessions and cancels
// from a chosen client address, the cancels each fake tunnel recorded, and the fleet's metrics read off a proxy.
import { test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { startProxy, type LogLine, type ProxyProcess } from "./proxy-process.ts";
import { metric, scrape } from "./admin.ts";
import { echoRoundTrip, rawConnect, readUntilClose } from "./clients.ts";
import { clientHello, records, unique } from "./builders.ts";
import { redisUnavailable } from "./redis.ts";
import { within } from "./deadline.ts";

/**
 * Why the file's tests cannot run (redis-server missing), else null. Call it at a test file's top level: under
 * CI=true it registers a test there that fails saying so, as CI installs redis-server.
 */
export function requireRedis(): string | null {
  const why = redisUnavailable();
  test.if(why !== null && process.env.CI === "true")("CI has a redis-server to test the fleet against", () => {
    throw new Error(`fleet tests cannot run in CI: ${why}`);
  });
  return why;
}

export function fleetName(): string {
  return `ttp-e2e-${unique()}`;
}

/** A directory for the fake tunnels' records (FAKE_CF_STATE_DIR); the test file removes it (removeDirs) when done. */
export function stateDir(): string {
  return mkdtempSync(join(tmpdir(), "ttp-fleet-e2e-"));
}

/** Removes the directories that were made (a skipped or failed beforeAll may have made none). */
export function removeDirs(...dirs: (string | undefined)[]): void {
  for (const dir of dirs) if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

/** A proxy in fleet `name` with an admin server, once its log says it joined (connected and subscribed). */
export async function fleetProxy(url: string, name: string, nodeId: string, args: string[] = [], env: Record<string, string> = {}): Promise<ProxyProcess> {
  const proxy = await startProxy(["--fleet-redis", url, "--fleet-name", name, "--node-id", nodeId, "--metrics-listen", "127.0.0.1:0", ...args], env);
  await proxy.waitFor((line) => line.msg === "fleet joined", 10_000);
  return proxy;
}

/** Each CancelRequest the fake tunnel `tunnel` received, as `<pid> <secret>`, in order. */
export function cancelsIn(dir: string, tunnel: string): string[] {
  const file = join(dir, `${tunnel}.cancels`);
  // Each line is `<pid> <secret> <PROXY header hex or ->`; the relay tests compare the keys.
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").map((line) => line.split(" ").slice(0, 2).join(" ")) : [];
}

/** Every CancelRequest any fake tunnel writing to `dir` received. */
export function allCancels(dir: string): string[] {
  const glob = new Bun.Glob("*.cancels");
  return [...glob.scanSync(dir)].flatMap((file) => cancelsIn(dir, file.slice(0, -".cancels".length)));
}

/** Resolves with the time (performance.now()) the tunnel's `count`-th cancel was seen; polled every 2 ms. */
export function cancelArrives(dir: string, tunnel: string, count: number, deadlineMs = 5000): Promise<number> {
  const seen = new Promise<number>((resolve) => {
    const look = () => (cancelsIn(dir, tunnel).length >= count ? resolve(performance.now()) : void setTimeout(look, 2));
    look();
  });
  return within(deadlineMs, seen, `cancel number ${count} at ${tunnel}'s backend`);
}

/** A proxied session through an echo tunnel, kept open, from `localAddress`; resolves once its hello came back. */
export async function echoSession(port: number, sni: string, localAddress: string, prefix: Uint8Array = new Uint8Array()): Promise<Socket> {
  const socket = await rawConnect(port, localAddress);
  await within(10_000, echoRoundTrip(socket, new Uint8Array([...prefix, ...records(clientHello({ names: [sni] }))])), `the session to ${sni}`);
  return socket;
}

/** Sends `bytes` (a CancelRequest, a PROXY header first if any) from `localAddress`; resolves once the proxy closed. */
export async function sendCancel(port: number, localAddress: string, bytes: Uint8Array): Promise<Buffer> {
  const socket = await rawConnect(port, localAddress);
  const reply = readUntilClose(socket);
  socket.write(bytes);
  return within(5000, reply, `the close of a cancel from ${localAddress}`);
}

/**
 * The summary lines of `proxy` so far with outcome `outcome`, and when given, of `client`: the address a connection
 * counts under (its trusted PROXY source, else its peer).
 */
export function summaries(proxy: ProxyProcess, outcome: string, client?: string): LogLine[] {
  const counted = (l: LogLine) => l.proxy_src ?? l.client;
  return proxy.lines.filter((l) => l.msg === "connection" && l.outcome === outcome && (client === undefined || counted(l) === client));
}

/** Resolves with the `count`-th summary with `outcome` from `client`, once `proxy` has logged it. */
export async function summaryCount(proxy: ProxyProcess, outcome: string, client: string, count: number): Promise<LogLine> {
  await proxy.waitFor(() => summaries(proxy, outcome, client).length >= count, 5000);
  return summaries(proxy, outcome, client)[count - 1] as LogLine;
}

const REQUEST_RESULTS = ["forwarded", "relayed", "unroutable", "limited", "failed"] as const;
const RELAYED_RESULTS = ["forwarded", "unroutable", "invalid", "dropped"] as const;

export interface FleetCounts {
  /** cancel_requests_total by result: this proxy's own CancelRequests. */
  readonly requests: Record<(typeof REQUEST_RESULTS)[number], number>;
  /** fleet_cancels_total by result: the relayed cancels this proxy received. */
  readonly relayed: Record<(typeof RELAYED_RESULTS)[number], number>;
  readonly redisUp: number;
  readonly members: number;
}

export async function fleetCounts(proxy: ProxyProcess): Promise<FleetCounts> {
  const samples = await scrape(proxy.adminPort as number);
  const by = <K extends string>(name: string, results: readonly K[]) =>
    Object.fromEntries(results.map((result) => [result, metric(samples, `tcp_tunnel_proxy_${name}`, { result })])) as Record<K, number>;
  return {
    requests: by("cancel_requests_total", REQUEST_RESULTS),
    relayed: by("fleet_cancels_total", RELAYED_RESULTS),
    redisUp: metric(samples, "tcp_tunnel_proxy_fleet_redis_up"),
    members: metric(samples, "tcp_tunnel_proxy_fleet_members"),
  };
}

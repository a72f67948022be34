// GET /fleet over three real proxies: every live member's record; one killed outright leaves when its record
// expires, one stopped cleanly leaves at once, one started again rejoins; without a fleet there is no /fleet.
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { proxyCommand, startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { adminGet, eventually } from "../helpers/admin.ts";
import { unique } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { echoSession, fleetCounts, fleetName, fleetProxy, requireRedis } from "../helpers/fleet.ts";

const unavailable = requireRedis();
/** A member record's lifetime after its last refresh. */
const TTL_MS = 15_000;

interface MemberRecord {
  node_id: string;
  listen: string;
  version: string;
  started_at: string;
  tunnels: { hostname: string; state: string; pinned: boolean; connections: number }[];
}

async function members(proxy: ProxyProcess): Promise<MemberRecord[]> {
  const response = await adminGet(proxy.adminPort as number, "/fleet");
  if (response.status !== 200) throw new Error(`/fleet answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as MemberRecord[];
}

const ids = (records: MemberRecord[]) => records.map((r) => r.node_id);

/** Resolves with the member list once `ok` holds for it, asked of `proxy`; fails after `ms` saying `what`. */
function listed(proxy: ProxyProcess, ok: (ids: string[]) => boolean, ms: number, what: string): Promise<MemberRecord[]> {
  return within(ms, eventually(() => members(proxy), (records) => ok(ids(records)), ms), what);
}

describe.skipIf(unavailable !== null)("GET /fleet with three members", () => {
  let redis: RedisServer;
  let name: string;
  const proxies: ProxyProcess[] = [];
  const sessions: Socket[] = [];
  const join = async (nodeId: string) => {
    const proxy = await fleetProxy(redis.url, name, nodeId, ["--log-level", "info"]);
    proxies.push(proxy);
    return proxy;
  };

  beforeAll(async () => {
    redis = await startRedis();
    name = fleetName();
  });
  afterAll(async () => {
    for (const socket of sessions) socket.destroy();
    await Promise.all(proxies.map((p) => p.stop()));
    await redis?.stop();
  });

  test("all three listed with their records; killed leaves within the TTL, stopped at once, restarted rejoins", async () => {
    const started = Date.now();
    const [one, two, three] = [await join("member-1"), await join("member-2"), await join("member-3")] as [ProxyProcess, ProxyProcess, ProxyProcess];
    const version = Bun.spawnSync([...proxyCommand(), "--version"]).stdout.toString().trim().split(" ").at(-1);
    const records = await listed(two, (now) => now.length === 3, 5000, "three members listed");
    expect(ids(records)).toEqual(["member-1", "member-2", "member-3"]);
    records.forEach((record, i) => {
      expect(Object.keys(record).sort()).toEqual(["listen", "node_id", "started_at", "tunnels", "version"]);
      expect(record.listen).toBe(`127.0.0.1:${[one, two, three][i]?.port}`);
      expect(record.version).toBe(version as string);
      expect(Date.parse(record.started_at)).toBeGreaterThanOrEqual(started - 1000);
      expect(record.tunnels).toEqual([]);
    });

    // A session on member 1 shows in its record at the next refresh (every 5 s).
    const sni = `m-${unique()}.fleet.test`;
    sessions.push(await echoSession(one.port, sni, "127.0.0.2"));
    const withTunnel = await within(8000, eventually(() => members(three),
      (now) => now[0]?.tunnels.some((t) => t.hostname === `cft-${sni}` && t.connections === 1) === true, 8000), "member 1's tunnel in its record");
    expect(withTunnel[0]?.tunnels).toEqual([{ hostname: `cft-${sni}`, state: "ready", pinned: false, connections: 1 }]);

    three.proc.kill("SIGKILL");
    const killed = performance.now();
    await three.proc.exited;
    // Nothing deleted its record: it is still listed until it expires.
    expect(ids(await members(one))).toContain("member-3");

    two.proc.kill("SIGTERM");
    await listed(one, (now) => !now.includes("member-2"), 1500, "member 2 gone after its SIGTERM");
    expect(await two.stop()).toBe(0);

    const restarted = performance.now();
    const again = await join("member-2");
    const rest = 10_000 - (performance.now() - restarted);
    await listed(one, (now) => now.includes("member-2"), rest, "member 2 listed within 10 s of its restart");
    expect((await members(again)).find((r) => r.node_id === "member-2")?.listen).toBe(`127.0.0.1:${again.port}`);

    const left = TTL_MS + 3000 - (performance.now() - killed);
    await listed(one, (now) => !now.includes("member-3"), left, "member 3 gone once its record expired");
    expect(ids(await members(again))).toEqual(["member-1", "member-2"]);
    await within(7000, eventually(() => fleetCounts(one), (c) => c.members === 2, 7000), "fleet_members 2 on member 1");
  }, 60_000);

  test("without --fleet-redis, /fleet is 404 and there is no fleet metric", async () => {
    const alone = await startProxy(["--metrics-listen", "127.0.0.1:0"]);
    proxies.push(alone);
    const response = await adminGet(alone.adminPort as number, "/fleet");
    expect(response.status).toBe(404);
    expect(await fleetCounts(alone).catch((error: Error) => error.message)).toContain("no sample");
  });
});

// Member records through a real redis-server: the list, a clean stop, a member that dies, and a restricted ACL user.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { resolve } from "node:path";
import { eventually } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { redisUnavailable, startRedis, type RedisServer } from "../helpers/redis.ts";
import { allUp, fleetName, member, notice, pidOf, type TestMember } from "./harness.ts";

const unavailable = redisUnavailable();
test.if(unavailable !== null && process.env.CI === "true")("CI has a redis-server to test against", () => {
  throw new Error(`real Redis tests cannot run in CI: ${unavailable}`);
});

const MEMBER_PROCESS = resolve(import.meta.dir, "member-process.ts");

/**
 * The message a call was refused with. (Awaited here rather than with expect().rejects: under bun:test, a NOPERM
 * reply handed to expect().rejects makes Bun 1.4.5's client drop its connection, failing the next call.)
 */
async function refusal(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    return (error as Error).message;
  }
  return "not refused";
}

describe.skipIf(unavailable !== null)("fleet membership through a real redis-server", () => {
  let redis: RedisServer;
  let admin: RedisClient;
  const members: TestMember[] = [];
  const join = (url: string, name: string, setup: Parameters<typeof member>[2] = {}) => {
    const joined = member(url, name, setup);
    members.push(joined);
    return joined;
  };
  const nodeIds = async (m: TestMember) => (await m.fleet.members()).map((record) => record.node_id);

  beforeAll(async () => {
    redis = await startRedis();
    admin = new RedisClient(redis.url);
    await admin.connect();
  });
  afterAll(async () => {
    await Promise.all(members.map((m) => m.fleet.stop()));
    admin?.close();
    await redis?.stop();
  });

  test("members() lists every live member's record, sorted by node id; stop() removes one at once", async () => {
    const name = fleetName();
    const tunnels = [{ hostname: "cft-db-1.example", state: "ready", pinned: true, connections: 3 }];
    const [c, a, b] = ["node-c", "node-a", "node-b"].map((nodeId) => join(redis.url, name, { nodeId, tunnels, refreshMs: 200 })) as [
      TestMember, TestMember, TestMember,
    ];
    await allUp([a, b, c]);
    await eventually(() => nodeIds(a), (ids) => ids.length === 3, 5000);
    const records = await c.fleet.members();
    expect(records.map((r) => r.node_id)).toEqual(["node-a", "node-b", "node-c"]);
    expect(records[0]).toEqual({ node_id: "node-a", listen: "127.0.0.1:5432", version: "9.9.9", started_at: "2026-01-02T03:04:05.000Z", tunnels });
    await eventually(() => [a, b, c].map((m) => m.fleet.memberCount), (counts) => counts.every((n) => n === 3), 3000);
    await b.fleet.stop();
    expect(await nodeIds(a)).toEqual(["node-a", "node-c"]);
    expect(await admin.exists(`${name}:member:node-b`)).toBe(false);
    await eventually(() => a.fleet.memberCount, (count) => count === 2, 3000);
  });

  test("a member that dies without stopping is listed until its record's TTL runs out, then not", async () => {
    const name = fleetName();
    const watcher = join(redis.url, name);
    const ttl = 3000;
    const refresh = 500;
    await allUp([watcher]);
    const child = Bun.spawn([process.execPath, MEMBER_PROCESS, redis.url, name, "node-doomed", String(ttl), String(refresh)], { stderr: "pipe" });
    try {
      await eventually(() => nodeIds(watcher), (ids) => ids.includes("node-doomed"), 10_000);
      const record = (await watcher.fleet.members()).find((r) => r.node_id === "node-doomed");
      expect(record?.tunnels).toEqual([{ hostname: "cft-db.example", state: "ready", pinned: false, connections: 1 }]);
    } finally {
      child.kill("SIGKILL");
    }
    await child.exited;
    const killed = performance.now();
    expect(await nodeIds(watcher)).toContain("node-doomed");
    await eventually(() => nodeIds(watcher), (ids) => !ids.includes("node-doomed"), ttl + 3000);
    // Redis never expires a key early: the record lived at least its TTL after the last refresh before the kill.
    expect(performance.now() - killed).toBeGreaterThanOrEqual(ttl - refresh - 50);
  });

  test("after stop() nothing of the fleet keeps a process alive", async () => {
    const name = fleetName();
    const child = Bun.spawn([process.execPath, MEMBER_PROCESS, redis.url, name, "node-leaving", "15000", "5000", "stop-when-up"], { stderr: "pipe" });
    try {
      expect(await within(5000, child.exited, "the member process exiting by itself after stop()")).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
    const log = await new Response(child.stderr).text();
    expect(log).toContain('"msg":"fleet joined"');
    expect(await admin.exists(`${name}:member:node-leaving`)).toBe(false);
  });

  const MINIMAL = ["-@all", ...["ping", "select", "publish", "subscribe", "set", "del", "mget", "zadd", "zrange", "zrem", "zremrangebyscore", "pexpire"].map((c) => `+${c}`)];
  test.each([
    ["the commands listed in the README", MINIMAL],
    ["every command but the dangerous ones", ["+@all", "-@dangerous"]],
  ])("a Redis ACL user limited to the fleet's keys and channel and to %s is enough", async (_, commands) => {
    const name = fleetName();
    const password = "acl-Secret-42";
    await admin.send("ACL", ["SETUSER", `user-${name}`, "reset", "on", `>${password}`, `~${name}:*`, `&${name}:*`, ...commands]);
    await admin.send("ACL", ["LOG", "RESET"]);
    const url = `redis://user-${name}:${password}@127.0.0.1:${redis.port}/3`;
    const [a, b] = [join(url, name, { refreshMs: 200 }), join(url, name, { refreshMs: 200 })] as [TestMember, TestMember];
    await allUp([a, b]);
    await eventually(() => nodeIds(a), (ids) => ids.length === 2, 5000);
    await eventually(() => a.fleet.memberCount, (count) => count === 2, 3000);
    a.fleet.publish(notice(31, 32));
    await within(2000, b.routedAtLeast(1), "a cancel relayed under the ACL user");
    expect(b.routed.map(pidOf)).toEqual([31]);
    await b.fleet.stop();
    expect(await nodeIds(a)).toEqual([a.nodeId]);
    // A heartbeat has run under the user too (the subscribed connection's last command is a PING).
    const pinged = (list: string) => list.split("\n").some((line) => line.includes(`user=user-${name}`) && line.includes(" sub=1 ") && line.includes(" cmd=ping "));
    await eventually(() => admin.send("CLIENT", ["LIST"]) as Promise<string>, pinged, 3000);
    // Nothing the module did was refused, and the user really is confined.
    expect(await admin.send("ACL", ["LOG"])).toEqual([]);
    const confined = new RedisClient(url);
    await confined.connect();
    expect(await refusal(confined.send("SET", ["elsewhere", "x"]))).toContain("NOPERM");
    expect(await refusal(confined.send("PUBLISH", ["elsewhere", "x"]))).toContain("NOPERM");
    expect(await refusal(confined.send("KEYS", ["*"]))).toContain("NOPERM");
    confined.close();
    const everything = [...a.lines, ...b.lines].map((line) => JSON.stringify(line)).join("\n");
    expect(everything).not.toContain(password);
    expect(everything).toContain("redis://***:***@127.0.0.1");
    await a.fleet.stop();
  });
});

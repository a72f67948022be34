// Fleet members against a redis-server that is missing at start, killed and restarted, or frozen (SIGSTOP).
import { afterEach, describe, expect, test } from "bun:test";
import { after, type Clock } from "../../src/clock.ts";
import { eventually } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { freePort } from "../helpers/proxy-process.ts";
import { redisUnavailable, startRedis, type RedisServer } from "../helpers/redis.ts";
import { allUp, fleetName, member, notice, pidOf, type TestMember } from "./harness.ts";

const unavailable = redisUnavailable();
test.if(unavailable !== null && process.env.CI === "true")("CI has a redis-server to test against", () => {
  throw new Error(`real Redis tests cannot run in CI: ${unavailable}`);
});

const warnings = (m: TestMember) => m.lines.filter((line) => line.level === "warn");
const nodeIds = async (m: TestMember) => (await m.fleet.members()).map((record) => record.node_id);

/** How long `promise` took to settle, and whether it was rejected. */
async function timed(promise: Promise<unknown>): Promise<{ ms: number; rejected: boolean }> {
  const start = performance.now();
  const rejected = await promise.then(() => false, () => true);
  return { ms: performance.now() - start, rejected };
}

test("with no server, the retry delay doubles from 250 ms to a cap of 5 s and stays there", async () => {
  // Every timer runs 1 ms later, whatever it asks for: the retries the delays describe happen at once.
  const hurried: Clock = { now: () => Date.now(), after: (_, callback) => after(1, callback) };
  const m = member(`redis://127.0.0.1:${freePort()}`, fleetName(), { clock: hurried });
  try {
    const retries = () => m.lines.filter((l) => l.msg.startsWith("fleet store")).map((l) => l.fields.retry_ms);
    await eventually(retries, (delays) => delays.length >= 8, 5000);
    expect(retries().slice(0, 8)).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    expect(warnings(m)).toHaveLength(1);
  } finally {
    await m.fleet.stop();
  }
});

describe.skipIf(unavailable !== null)("fleet faults with a real redis-server", () => {
  const servers: RedisServer[] = [];
  const members: TestMember[] = [];
  const join = (url: string, name: string) => {
    const joined = member(url, name);
    members.push(joined);
    return joined;
  };
  afterEach(async () => {
    for (const server of servers) server.resume();
    await Promise.all(members.splice(0).map((m) => m.fleet.stop()));
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  test("no server at start: start() returns, one warning while it retries, and it joins once the server is up", async () => {
    const port = freePort();
    const password = "pw-Never-Logged";
    const m = join(`redis://:${password}@127.0.0.1:${port}`, fleetName());
    expect(m.fleet.up).toBe(false);
    m.fleet.publish(notice(1, 1));
    expect((await timed(m.fleet.members())).rejected).toBe(true);
    await eventually(() => m.lines.filter((l) => l.msg === "fleet store still unreachable").length, (n) => n >= 2, 5000);
    expect(warnings(m)).toHaveLength(1);
    expect(m.lines.filter((l) => l.msg === "fleet cancel not published")).toHaveLength(1);
    servers.push(await startRedis(port));
    await allUp([m], 6000);
    expect(await nodeIds(m)).toEqual([m.nodeId]);
    expect(warnings(m)).toHaveLength(1);
    expect(m.lines.some((l) => l.msg === "fleet store reachable again")).toBe(true);
    const everything = m.lines.map((line) => JSON.stringify(line)).join("\n");
    expect(everything).not.toContain(password);
    expect(everything).toContain(`redis://:***@127.0.0.1:${port}`);
  });

  test("server killed: up is false within 3 s and publish refuses at once; restarted: relay and records are back within 5 s", async () => {
    const redis = await startRedis();
    servers.push(redis);
    const name = fleetName();
    const [a, b] = [join(redis.url, name), join(redis.url, name)] as [TestMember, TestMember];
    await allUp([a, b]);
    await redis.kill();
    await eventually(() => a.fleet.up || b.fleet.up, (up) => !up, 3000);
    a.fleet.publish(notice(2, 2));
    expect(a.lines.filter((l) => l.msg === "fleet cancel not published").map((l) => l.fields.reason)).toEqual(["not connected"]);
    expect((await timed(a.fleet.members())).rejected).toBe(true);
    await redis.restart();
    await allUp([a, b], 5000);
    a.fleet.publish(notice(3, 3));
    await within(2000, b.routedAtLeast(1), "a cancel relayed after the restart");
    expect(b.routed.map(pidOf)).toEqual([3]);
    // The restarted server started empty: both records are there because both members wrote them again.
    await eventually(() => nodeIds(a), (ids) => ids.length === 2, 2000);
    for (const m of [a, b]) {
      expect(warnings(m).map((l) => l.msg)).toEqual(["fleet store unreachable; cancels stay local until it is back"]);
      expect(m.lines.filter((l) => l.msg === "fleet store reachable again")).toHaveLength(1);
    }
  });

  test("server frozen: publish returns at once and holds at most 64, members() rejects and stop() resolves in about 1 s", async () => {
    const redis = await startRedis();
    servers.push(redis);
    const name = fleetName();
    const [a, b, idle] = [join(redis.url, name), join(redis.url, name), join(redis.url, name)] as [TestMember, TestMember, TestMember];
    await allUp([a, b, idle]);
    redis.pause();
    const paused = performance.now();
    for (let pid = 0; pid < 100; pid++) a.fleet.publish(notice(pid, 0));
    const refused = a.lines.filter((l) => l.msg === "fleet cancel not published");
    expect(refused.map((l) => l.fields.reason)).toEqual(Array(36).fill("too many waiting"));
    const [listing, stopping] = await Promise.all([timed(a.fleet.members()), timed(b.fleet.stop())]);
    expect(listing.rejected).toBe(true);
    // It waited for the frozen server (about the 1 s bound) rather than being refused as not connected.
    expect(listing.ms).toBeGreaterThanOrEqual(900);
    expect(listing.ms).toBeLessThan(1500);
    expect(stopping.ms).toBeLessThan(1500);
    // A call that timed out means a frozen server: the connections are dropped then, not at the next heartbeat.
    expect(a.fleet.up).toBe(false);
    // The idle member made no call: its heartbeat notices the frozen server.
    await eventually(() => a.fleet.up || idle.fleet.up, (up) => !up, 3000 - (performance.now() - paused));
    // The 64 publishes waiting when the connection was dropped are given up, not queued for later.
    await eventually(() => a.lines.filter((l) => l.msg === "fleet cancel not published").length, (n) => n === 100, 2000);
    redis.resume();
    await allUp([a, idle], 6000);
    a.fleet.publish(notice(777, 0));
    await within(2000, idle.routedAtLeast(1), "a cancel relayed after the server thawed");
    expect(idle.routed.map(pidOf)).toEqual([777]);
  });
});

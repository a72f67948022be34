// The cancel relay between Fleet members through a real redis-server: delivery, refusal of garbage, the routing bound.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { eventually } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { redisUnavailable, startRedis, type RedisServer } from "../helpers/redis.ts";
import { cancelRequest } from "../helpers/wire.ts";
import { allUp, fleetName, member, notice, pidOf, type TestMember } from "./harness.ts";

const unavailable = redisUnavailable();
test.if(unavailable !== null && process.env.CI === "true")("CI has a redis-server to test against", () => {
  throw new Error(`real Redis tests cannot run in CI: ${unavailable}`);
});

/** A message as another program would put it on the channel. */
function message(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    v: 1,
    from: "outsider",
    at: Date.now(),
    client: "198.51.100.9",
    client_port: 40000,
    local_address: "10.0.0.1",
    local_port: 5432,
    request: cancelRequest(42, 43).toHex(),
    header: null,
    ...overrides,
  });
}

describe.skipIf(unavailable !== null)("cancel relay through a real redis-server", () => {
  let redis: RedisServer;
  let plain: RedisClient;
  const members: TestMember[] = [];
  const join = (name: string, setup: Parameters<typeof member>[2] = {}) => {
    const joined = member(redis.url, name, setup);
    members.push(joined);
    return joined;
  };

  beforeAll(async () => {
    redis = await startRedis();
    plain = new RedisClient(redis.url);
    await plain.connect();
  });
  afterAll(async () => {
    await Promise.all(members.map((m) => m.fleet.stop()));
    plain?.close();
    await redis?.stop();
  });

  test("a published cancel reaches every other member's route within 200 ms, never the sender's own", async () => {
    const name = fleetName();
    const [a, b, c] = [join(name), join(name), join(name, { answer: "unroutable" })] as [TestMember, TestMember, TestMember];
    await allUp(members);
    const sent = notice(1001, 2001, "2001:db8::7");
    a.fleet.publish(sent);
    await within(200, Promise.all([b.routedAtLeast(1), c.routedAtLeast(1)]), "the cancel at B and C");
    for (const receiver of [b, c]) {
      expect(receiver.routed).toHaveLength(1);
      const relayed = receiver.routed[0]!;
      expect({ ...relayed, at: 0 }).toEqual({ ...sent, from: a.nodeId, at: 0 });
      expect(Math.abs(relayed.at - Date.now())).toBeLessThan(1000);
    }
    // A hears B's cancel, published after A's reached B: had A routed its own, it would be first in line.
    b.fleet.publish(notice(1002, 2002));
    await within(200, Promise.all([a.routedAtLeast(1), c.routedAtLeast(2)]), "B's cancel at A and C");
    expect(a.routed.map(pidOf)).toEqual([1002]);
    expect(b.routed.map(pidOf)).toEqual([1001]);
    expect(c.routed.map(pidOf)).toEqual([1001, 1002]);
    await eventually(() => [a.fleet.counts(), b.fleet.counts(), c.fleet.counts()], (all) => all[2]?.unroutable === 2, 2000);
    expect(a.fleet.counts()).toEqual({ forwarded: 1, unroutable: 0, invalid: 0, dropped: 0 });
    expect(b.fleet.counts()).toEqual({ forwarded: 1, unroutable: 0, invalid: 0, dropped: 0 });
    expect(c.fleet.counts()).toEqual({ forwarded: 0, unroutable: 2, invalid: 0, dropped: 0 });
  });

  test("garbage on the channel is counted invalid and reaches no route", async () => {
    const name = fleetName();
    const m = join(name);
    await allUp(members);
    const garbage = [
      "not json",
      "{}",
      message({ v: 2 }),
      message({ request: cancelRequest(1, 2).subarray(0, 15).toHex() }),
      message({ request: cancelRequest(1, 2).toHex() + "00" }),
      message({ request: "00000010" + "04d2162f" + "0000000100000002" }),
      message({ at: Date.now() - 6000 }),
      message({ at: Date.now() + 6000 }),
      message({ client: "::ffff:198.51.100.9" }),
      message({ header: "UFJPWFk=" }),
      message({ header: Buffer.from(new Uint8Array(4096 + 17)).toString("base64") }),
      message().slice(0, -1) + `,"padding":"${"x".repeat(17 * 1024)}"}`,
    ];
    for (const text of garbage) await plain.publish(`${name}:cancels`, text);
    // A valid message after the garbage: once it is routed, every message before it has been judged.
    await plain.publish(`${name}:cancels`, message({ request: cancelRequest(7777, 1).toHex() }));
    await within(2000, m.routedAtLeast(1), "the valid message after the garbage");
    expect(m.routed.map(pidOf)).toEqual([7777]);
    expect(m.fleet.counts().invalid).toBe(garbage.length);
    const problems = m.lines.filter((l) => l.msg === "fleet message invalid").map((l) => l.fields.problem);
    expect(problems).toEqual([
      "not_json", "bad_version", "bad_version", "not_cancel_request", "not_cancel_request", "not_cancel_request",
      "stale", "future", "bad_field", "bad_header", "bad_header", "oversized",
    ]);
  });

  test("beyond 64 relayed cancels being routed at once, the next are dropped; routing resumes once they finish", async () => {
    const name = fleetName();
    const m = join(name, { answer: "hold" });
    await allUp(members);
    const channel = `${name}:cancels`;
    await Promise.all(Array.from({ length: 70 }, (_, i) => plain.publish(channel, message({ request: cancelRequest(i, 0).toHex() }))));
    await eventually(() => m.fleet.counts().dropped, (dropped) => dropped === 6, 5000);
    expect(m.routed).toHaveLength(64);
    expect(m.routed.map(pidOf)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    m.release("forwarded");
    await eventually(() => m.fleet.counts().forwarded, (forwarded) => forwarded === 64, 2000);
    await plain.publish(channel, message({ request: cancelRequest(500, 0).toHex() }));
    await within(2000, m.routedAtLeast(65), "a cancel once the routing slots are free");
    m.release("forwarded");
    await eventually(() => m.fleet.counts().forwarded, (forwarded) => forwarded === 65, 2000);
    expect(m.fleet.counts()).toEqual({ forwarded: 65, unroutable: 0, invalid: 0, dropped: 6 });
  });

  test("a route that throws counts unroutable and frees its slot", async () => {
    const name = fleetName();
    const m = join(name, { answer: "throw", maxRouting: 1 });
    await allUp(members);
    for (const pid of [1, 2]) {
      await plain.publish(`${name}:cancels`, message({ request: cancelRequest(pid, 0).toHex() }));
      await within(2000, m.routedAtLeast(pid), `cancel ${pid} routed`);
    }
    await eventually(() => m.fleet.counts(), (counts) => counts.unroutable === 2, 2000);
    expect(m.fleet.counts()).toEqual({ forwarded: 0, unroutable: 2, invalid: 0, dropped: 0 });
    expect(m.lines.filter((l) => l.msg === "fleet cancel routing failed")).toHaveLength(2);
  });
});

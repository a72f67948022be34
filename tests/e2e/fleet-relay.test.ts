// Two proxies in one fleet on a real redis-server: a cancel that arrives at the proxy without the session reaches the
// session's backend through the other; a client with a session nowhere reaches no backend; a flood is limited where
// it arrives, before anything is relayed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "node:net";
import type { ProxyProcess } from "../helpers/proxy-process.ts";
import { eventually } from "../helpers/admin.ts";
import { unique } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { cancelRequest } from "../helpers/wire.ts";
import {
  allCancels, cancelArrives, cancelsIn, echoSession, fleetCounts, fleetName, fleetProxy, removeDirs, requireRedis, sendCancel, stateDir, summaries,
  summaryCount,
} from "../helpers/fleet.ts";

const unavailable = requireRedis();
/** B's --cancel-rate: CancelRequests per second per client, in bursts of as many. */
const B_RATE = 3;

// With --workers 2 a cancel or a session may be accepted by a worker thread: routing and relaying stay in the main one.
describe.skipIf(unavailable !== null).each([1, 2])("cancel relay between two proxies of a fleet, --workers %d", (workers) => {
  let redis: RedisServer;
  let a: ProxyProcess;
  let b: ProxyProcess;
  let dirA: string;
  let dirB: string;
  const sessions: Socket[] = [];

  beforeAll(async () => {
    [dirA, dirB] = [stateDir(), stateDir()];
    redis = await startRedis();
    const name = fleetName();
    [a, b] = await Promise.all([
      fleetProxy(redis.url, name, "node-a", ["--workers", String(workers)], { FAKE_CF_STATE_DIR: dirA }),
      fleetProxy(redis.url, name, "node-b", ["--workers", String(workers), "--cancel-rate", String(B_RATE)], { FAKE_CF_STATE_DIR: dirB }),
    ]);
  });
  afterAll(async () => {
    for (const socket of sessions) socket.destroy();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    removeDirs(dirA, dirB);
  });

  test("a cancel sent to the proxy without the session reaches the session's backend within 200 ms", async () => {
    const sni = `rel-${unique()}.fleet.test`;
    const tunnel = `cft-${sni}`;
    sessions.push(await echoSession(a.port, sni, "127.0.0.2"));
    const sent = performance.now();
    await sendCancel(b.port, "127.0.0.2", cancelRequest(1111, 2222));
    const arrived = await cancelArrives(dirA, tunnel, 1);
    expect(arrived - sent).toBeLessThan(200);
    expect(cancelsIn(dirA, tunnel)).toEqual(["1111 2222"]);

    expect(await summaryCount(b, "cancel_relayed", "127.0.0.2", 1)).toBeDefined();
    const handled = await a.waitFor((l) => l.msg === "relayed cancel" && l.client === "127.0.0.2");
    expect(handled).toMatchObject({ from: "node-b", tunnels: 1, outcome: "cancel_forwarded" });
    expect((await fleetCounts(a)).relayed.forwarded).toBe(1);
    expect((await fleetCounts(b)).requests.relayed).toBe(1);
    // B has no session of this client: no tunnel there, and nothing reached a backend of its own.
    expect(allCancels(dirB)).toEqual([]);
  });

  test("a client with a session on neither proxy reaches no backend, whichever proxy it asks", async () => {
    const [beforeA, beforeB] = await Promise.all([fleetCounts(a), fleetCounts(b)]);
    const before = [...allCancels(dirA), ...allCancels(dirB)];
    await sendCancel(b.port, "127.0.0.3", cancelRequest(3333, 1));
    await sendCancel(a.port, "127.0.0.3", cancelRequest(3333, 2));
    await Promise.all([summaryCount(a, "cancel_relayed", "127.0.0.3", 1), summaryCount(b, "cancel_relayed", "127.0.0.3", 1)]);
    // Each was published, and the other member found no tunnel carrying that client.
    await within(5000, eventually(() => Promise.all([fleetCounts(a), fleetCounts(b)]),
      ([nowA, nowB]) => nowA.relayed.unroutable === beforeA.relayed.unroutable + 1 && nowB.relayed.unroutable === beforeB.relayed.unroutable + 1),
    "each member counting the other's cancel unroutable");
    expect([...allCancels(dirA), ...allCancels(dirB)]).toEqual(before);
    expect((await fleetCounts(a)).relayed.forwarded).toBe(beforeA.relayed.forwarded);
  });

  test("a flood at the proxy without the session is limited there: at most B's --cancel-rate gets through", async () => {
    const sni = `flood-${unique()}.fleet.test`;
    const tunnel = `cft-${sni}`;
    sessions.push(await echoSession(a.port, sni, "127.0.0.4"));
    const [beforeA, beforeB] = await Promise.all([fleetCounts(a), fleetCounts(b)]);
    const flood = 30;
    const started = performance.now();
    await Promise.all(Array.from({ length: flood }, (_, i) => sendCancel(b.port, "127.0.0.4", cancelRequest(4000 + i, 4))));
    const seconds = (performance.now() - started) / 1000;
    await summaryCount(b, "cancel_limited", "127.0.0.4", 1);
    await b.waitFor(() => summaries(b, "cancel_limited", "127.0.0.4").length + summaries(b, "cancel_relayed", "127.0.0.4").length === flood);

    const passed = summaries(b, "cancel_relayed", "127.0.0.4").length;
    // A full bucket, plus what refilled while the flood lasted.
    expect(passed).toBeGreaterThanOrEqual(B_RATE);
    expect(passed).toBeLessThanOrEqual(B_RATE + Math.ceil(B_RATE * seconds));
    const afterB = await fleetCounts(b);
    expect(afterB.requests.limited - beforeB.requests.limited).toBe(flood - passed);
    expect(afterB.requests.relayed - beforeB.requests.relayed).toBe(passed);

    await within(5000, eventually(() => fleetCounts(a), (now) => now.relayed.forwarded === beforeA.relayed.forwarded + passed),
      `A forwarding the ${passed} cancels B relayed`);
    await cancelArrives(dirA, tunnel, passed);
    expect(cancelsIn(dirA, tunnel).length).toBe(passed);
  });
});

// The fleet's Redis failing under two proxies: killed, cancels stay local and the relay comes back with it; frozen
// (SIGSTOP), no session, local cancel or drain waits for it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TLSSocket } from "node:tls";
import { freePort, startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { adminGet, eventually } from "../helpers/admin.ts";
import { echoRoundTrip, rawConnect, tlsClient } from "../helpers/clients.ts";
import { within } from "../helpers/deadline.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { tlsEchoServer, type Backend } from "../helpers/servers.ts";
import { cancelRequest } from "../helpers/wire.ts";
import { cancelArrives, cancelsIn, fleetCounts, fleetName, fleetProxy, removeDirs, requireRedis, sendCancel, stateDir, summaries, summaryCount } from "../helpers/fleet.ts";

const unavailable = requireRedis();
const SNI = "db-faults.demo.test";
const TUNNEL = `cft-${SNI}`;

/** A real TLS session through `proxy` from `localAddress`, kept open, once a round trip went through it. */
async function tlsSession(proxy: ProxyProcess, localAddress: string): Promise<TLSSocket> {
  const socket = await tlsClient(proxy.port, SNI, { socket: await rawConnect(proxy.port, localAddress) });
  expect((await within(5000, echoRoundTrip(socket, Buffer.from("ping")), "the echo")).toString()).toBe("ping");
  return socket;
}

describe.skipIf(unavailable !== null)("the fleet's Redis failing", () => {
  let redis: RedisServer;
  let backend: Backend;
  let a: ProxyProcess;
  let b: ProxyProcess;
  let dir: string;
  const sessions: TLSSocket[] = [];
  /** Cancels that reached A's backend so far; each check expects one more. */
  let delivered = 0;
  const delivers = async (proxy: ProxyProcess, outcome: string, key: number) => {
    const before = summaries(proxy, outcome, "127.0.0.2").length;
    await sendCancel(proxy.port, "127.0.0.2", cancelRequest(7, key));
    await summaryCount(proxy, outcome, "127.0.0.2", before + 1);
    await cancelArrives(dir, TUNNEL, ++delivered);
    expect(cancelsIn(dir, TUNNEL).at(-1)).toBe(`7 ${key}`);
  };

  beforeAll(async () => {
    dir = stateDir();
    redis = await startRedis();
    backend = await tlsEchoServer();
    const name = fleetName();
    const env = { FAKE_CF_STATE_DIR: dir, FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` };
    [a, b] = await Promise.all([fleetProxy(redis.url, name, "node-a", [], env), fleetProxy(redis.url, name, "node-b", [], env)]);
    sessions.push(await tlsSession(a, "127.0.0.2"));
  });
  afterAll(async () => {
    redis?.resume();
    for (const socket of sessions) socket.destroy();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    backend?.close();
    removeDirs(dir);
  });

  test("Redis killed: fleet_redis_up drops within 3 s and cancels stay local; back on its port, the relay works within 5 s", async () => {
    await delivers(b, "cancel_relayed", 1);
    const warnings = (p: ProxyProcess) => p.lines.filter((l) => l.msg.startsWith("fleet store unreachable")).length;

    await redis.kill();
    await within(3000, eventually(() => Promise.all([fleetCounts(a), fleetCounts(b)]), (c) => c.every((x) => x.redisUp === 0), 3000),
      "fleet_redis_up 0 on both proxies");
    await delivers(a, "cancel_forwarded", 2);
    expect((await adminGet(a.adminPort as number, "/fleet")).status).toBe(503);
    // The proxy without the session can relay nothing now: its cancel goes nowhere, and says so.
    await sendCancel(b.port, "127.0.0.2", cancelRequest(7, 99));
    await summaryCount(b, "cancel_unroutable", "127.0.0.2", 1);

    const restarted = performance.now();
    await redis.restart();
    await within(5000, eventually(() => Promise.all([fleetCounts(a), fleetCounts(b)]), (c) => c.every((x) => x.redisUp === 1), 5000),
      "fleet_redis_up 1 again on both proxies");
    await delivers(b, "cancel_relayed", 3);
    expect(performance.now() - restarted).toBeLessThan(5000);
    // The restarted server came back empty: each member wrote its record again on reconnecting.
    const listed = (await (await adminGet(a.adminPort as number, "/fleet")).json()) as { node_id: string }[];
    expect(listed.map((m) => m.node_id)).toEqual(["node-a", "node-b"]);
    expect(cancelsIn(dir, TUNNEL)).not.toContain("7 99");
    // One warning per outage, however many reconnection attempts failed.
    expect([warnings(a), warnings(b)]).toEqual([1, 1]);
  }, 30_000);

  test("Redis frozen: a local cancel, a new TLS session and a drain go on in normal time", async () => {
    redis.pause();
    // At once, while the proxies still count the link as up: the cancel's publish hangs, the cancel must not.
    const sent = performance.now();
    await delivers(a, "cancel_forwarded", 4);
    const cancelMs = performance.now() - sent;
    const opened = performance.now();
    sessions.push(await tlsSession(a, "127.0.0.6"));
    const sessionMs = performance.now() - opened;
    // Its member record cannot be deleted: the stop gives up on that after a bounded wait.
    const stopping = performance.now();
    expect(await b.stop()).toBe(0);
    const stopMs = performance.now() - stopping;
    // A call to the frozen server is given up after 1 s: anything waiting on one would take at least that.
    expect(cancelMs).toBeLessThan(500);
    expect(sessionMs).toBeLessThan(500);
    expect(stopMs).toBeLessThan(3000);

    // The heartbeat notices the frozen server; a local cancel then does not even try to publish.
    await within(5000, eventually(() => fleetCounts(a), (c) => c.redisUp === 0, 5000), "fleet_redis_up 0 with Redis frozen");
    await delivers(a, "cancel_forwarded", 5);
  }, 30_000);

  test("Redis down at the start: the proxy serves, warns once, and joins when Redis comes up", async () => {
    const port = freePort();
    const late = await startProxy(["--fleet-redis", `redis://127.0.0.1:${port}`, "--metrics-listen", "127.0.0.1:0"], {
      FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}`,
    });
    try {
      await late.waitFor((l) => l.msg.startsWith("fleet store unreachable"));
      sessions.push(await tlsSession(late, "127.0.0.7"));
      expect((await fleetCounts(late)).redisUp).toBe(0);
      const second = await startRedis(port);
      try {
        // Reconnection attempts back off to at most 5 s apart.
        await late.waitFor((l) => l.msg === "fleet store reachable again", 7000);
        expect(late.lines.filter((l) => l.msg.startsWith("fleet store unreachable")).length).toBe(1);
        expect((await fleetCounts(late)).redisUp).toBe(1);
      } finally {
        await second.stop();
      }
    } finally {
      sessions.pop()?.destroy();
      await late.stop();
    }
  });
});

// A member that drains (SIGTERM) leaves the member list at once, yet its open sessions still run queries: a cancel
// for one of them that reaches another member must still be relayed to it until its drain is over.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "node:net";
import type { ProxyProcess } from "../helpers/proxy-process.ts";
import { adminGet, eventually } from "../helpers/admin.ts";
import { unique } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { cancelRequest } from "../helpers/wire.ts";
import { cancelArrives, cancelsIn, echoSession, fleetName, fleetProxy, removeDirs, requireRedis, sendCancel, stateDir, summaryCount } from "../helpers/fleet.ts";

const unavailable = requireRedis();

describe.skipIf(unavailable !== null)("a draining member of a fleet", () => {
  let redis: RedisServer;
  let a: ProxyProcess;
  let b: ProxyProcess;
  let session: Socket | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = stateDir();
    redis = await startRedis();
    const name = fleetName();
    [a, b] = await Promise.all([
      fleetProxy(redis.url, name, "node-a", ["--drain-timeout", "20s"], { FAKE_CF_STATE_DIR: dir }),
      fleetProxy(redis.url, name, "node-b"),
    ]);
  });
  afterAll(async () => {
    session?.destroy();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    removeDirs(dir);
  });

  test("leaves /fleet at once and still gets the cancels relayed for its open sessions", async () => {
    const sni = `d-${unique()}.fleet.test`;
    session = await echoSession(a.port, sni, "127.0.0.2");
    a.proc.kill("SIGTERM");
    await a.waitFor((l) => l.msg === "draining");
    const members = async () => ((await (await adminGet(b.adminPort as number, "/fleet")).json()) as { node_id: string }[]).map((m) => m.node_id);
    await within(2000, eventually(members, (ids) => !ids.includes("node-a"), 2000), "node-a gone from /fleet once it drains");

    await sendCancel(b.port, "127.0.0.2", cancelRequest(5, 6));
    await summaryCount(b, "cancel_relayed", "127.0.0.2", 1);
    await cancelArrives(dir, `cft-${sni}`, 1, 3000);
    expect(cancelsIn(dir, `cft-${sni}`)).toEqual(["5 6"]);
    // The session it cancelled a query of is still served until it ends.
    session.destroy();
    expect(await a.stop()).toBe(0);
  });
});

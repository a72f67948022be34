// Whatever else is published on a fleet's cancel channel (it is a plain Redis channel anyone with access can write):
// every malformed, oversized, stale or future message is counted invalid and reaches no backend; a well-formed one
// from another member is forwarded, and one naming this member as its sender is ignored.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import type { Socket } from "node:net";
import type { ProxyProcess } from "../helpers/proxy-process.ts";
import { unique } from "../helpers/builders.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { cancelRequest } from "../helpers/wire.ts";
import { allCancels, cancelArrives, cancelsIn, echoSession, fleetCounts, fleetName, fleetProxy, removeDirs, requireRedis, stateDir } from "../helpers/fleet.ts";

const unavailable = requireRedis();

/** A relayed cancel as a member would publish it, for the client 127.0.0.2, with `overrides`. */
function message(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    v: 1,
    from: "another-member",
    at: Date.now(),
    client: "127.0.0.2",
    client_port: 40000,
    local_address: "127.0.0.1",
    local_port: 5432,
    request: cancelRequest(77, 88).toHex(),
    header: null,
    ...overrides,
  });
}

/** A CancelRequest with its length or code changed: 16 bytes, but not one. */
function notCancel(length: number, code: number): string {
  const bytes = Buffer.alloc(16);
  bytes.writeUInt32BE(length, 0);
  bytes.writeUInt32BE(code, 4);
  return bytes.toString("hex");
}

const GARBAGE: Record<string, () => string> = {
  "not JSON": () => "{not json",
  "a JSON array": () => "[1,2,3]",
  "an unknown version": () => message({ v: 2 }),
  "a field missing": () => JSON.stringify({ ...JSON.parse(message()), header: undefined }),
  "an extra field": () => message({ extra: 1 }),
  "15 request bytes": () => message({ request: cancelRequest(77, 88).toHex().slice(0, 30) }),
  "17 request bytes": () => message({ request: `${cancelRequest(77, 88).toHex()}00` }),
  "an SSLRequest's code (80877103)": () => message({ request: notCancel(16, 80877103) }),
  "a length field of 8": () => message({ request: notCancel(8, 80877102) }),
  "a header that is not PROXY": () => message({ header: Buffer.from("GET / HTTP/1.1\r\n").toString("base64") }),
  "a client address not in canonical form": () => message({ client: "::ffff:127.0.0.2" }),
  "more than 16 KiB": () => message({ from: "x".repeat(17 * 1024) }),
  "stale (6 s old)": () => message({ at: Date.now() - 6000 }),
  "from the future (6 s ahead)": () => message({ at: Date.now() + 6000 }),
};

describe.skipIf(unavailable !== null)("garbage on the fleet's cancel channel", () => {
  let redis: RedisServer;
  let proxy: ProxyProcess;
  let plain: RedisClient;
  let session: Socket;
  let channel: string;
  let dir: string;

  beforeAll(async () => {
    dir = stateDir();
    redis = await startRedis();
    const name = fleetName();
    channel = `${name}:cancels`;
    proxy = await fleetProxy(redis.url, name, "node-g", [], { FAKE_CF_STATE_DIR: dir });
    plain = new RedisClient(redis.url);
    await plain.connect();
  });
  afterAll(async () => {
    session?.destroy();
    plain?.close();
    await proxy?.stop();
    await redis?.stop();
    removeDirs(dir);
  });

  test("each malformed message is counted invalid and reaches no backend; a valid one after them is forwarded", async () => {
    const sni = `g-${unique()}.fleet.test`;
    session = await echoSession(proxy.port, sni, "127.0.0.2");
    const before = await fleetCounts(proxy);
    for (const [what, build] of Object.entries(GARBAGE)) {
      expect({ what, subscribers: await plain.publish(channel, build()) }).toEqual({ what, subscribers: 1 });
    }
    // Its own message comes back to every member through the channel: ignored, not even counted.
    await plain.publish(channel, message({ from: "node-g", request: cancelRequest(66, 66).toHex() }));
    // Messages reach the member in order: once this one is forwarded, every one before it has been judged.
    await plain.publish(channel, message());
    await cancelArrives(dir, `cft-${sni}`, 1);

    const after = await fleetCounts(proxy);
    expect(after.relayed.invalid - before.relayed.invalid).toBe(Object.keys(GARBAGE).length);
    expect(after.relayed.forwarded - before.relayed.forwarded).toBe(1);
    expect(after.relayed.unroutable + after.relayed.dropped).toBe(before.relayed.unroutable + before.relayed.dropped);
    expect(cancelsIn(dir, `cft-${sni}`)).toEqual(["77 88"]);
    expect(allCancels(dir)).toEqual(["77 88"]);
    expect(proxy.lines.filter((l) => l.msg === "relayed cancel")).toEqual([expect.objectContaining({ from: "another-member", tunnels: 1 })]);
  });
});

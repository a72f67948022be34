// --proxy-replay off: a trusted balancer's PROXY header names the client for limits and cancel affinity but is not
// passed to the tunnel; with --send-proxy v2 the tunnel gets one generated from the client it named, for sessions,
// for cancels, and for cancels relayed by another member of the fleet.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "node:net";
import { startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, hex, ipv4Addresses, proxyV2, records, unique } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { recordingServer, type Backend } from "../helpers/servers.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { cancelRequest } from "../helpers/wire.ts";
import { fleetName, fleetProxy, requireRedis, summaryCount } from "../helpers/fleet.ts";

const noRedis = requireRedis();
const BALANCER = ["--trusted-proxies", "127.0.0.1", "--proxy-replay", "off"];

/**
 * The header a balancer sends for 198.51.100.<last>:<port> → 203.0.113.5:5432, with an AUTHORITY TLV (type 0x02,
 * spec §2.2.1) so that it differs from any header the proxy could generate.
 */
function received(last: number, port = 40000): Uint8Array {
  const authority = { type: 0x02, value: new TextEncoder().encode("db.balancer.test") };
  return proxyV2({ command: 1, family: 0x11, addresses: ipv4Addresses([198, 51, 100, last], [203, 0, 113, 5], port, 5432), tlvs: [authority] });
}

/**
 * PROXY v2 as the spec lays it out (§2.2): the 12-byte signature; 0x21 = version 2, command PROXY; 0x11 = TCP over
 * IPv4; length 12; source 198.51.100.7 (c6 33 64 07); destination 203.0.113.5 (cb 00 71 05); the two ports.
 */
function generated(sourcePort: string): Uint8Array {
  return hex(`0d0a0d0a 000d0a51 5549540a 21 11 000c c6336407 cb007105 ${sourcePort} 1538`);
}

const hello = (sni: string) => records(clientHello({ names: [sni] }));

describe("--proxy-replay off behind a trusted balancer", () => {
  const open: Socket[] = [];
  const proxies: ProxyProcess[] = [];
  const backends: Backend[] = [];
  afterAll(async () => {
    for (const socket of open) socket.destroy();
    await Promise.all(proxies.map((p) => p.stop()));
    for (const backend of backends) backend.close();
  });

  /** A proxy of its own test, with `args`, whose tunnels all forward to a recording backend of its own. */
  async function proxyWith(args: string[]) {
    const backend = recordingServer();
    backends.push(backend);
    const proxy = await startProxy([...BALANCER, ...args], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` });
    proxies.push(proxy);
    return { proxy, backend };
  }

  /** What `backend` receives for `bytes` sent through `proxy` (the connection kept open when `keep`). */
  async function through({ proxy, backend }: Awaited<ReturnType<typeof proxyWith>>, bytes: Uint8Array, expected: number, keep = true): Promise<Uint8Array> {
    const arriving = backend.next();
    const socket = await rawConnect(proxy.port);
    if (keep) open.push(socket);
    socket.write(bytes);
    return within(5000, arriving.then((c) => c.atLeast(expected)), `${expected} bytes at the backend`);
  }

  test("the tunnel gets the ClientHello alone; the per-address limit and cancel affinity use the PROXY source", async () => {
    const setup = await proxyWith(["--max-conns-per-ip", "2"]);
    const { proxy } = setup;
    const sni = `r-${unique()}.replay.test`;
    expect(await through(setup, new Uint8Array([...received(7), ...hello(sni)]), hello(sni).length)).toEqual(hello(sni));
    await through(setup, new Uint8Array([...received(7, 40001), ...hello(sni)]), hello(sni).length);

    // A third from 198.51.100.7 is over the limit; another source behind the same balancer is not.
    const third = await rawConnect(proxy.port);
    const refused = readUntilClose(third);
    third.write(new Uint8Array([...received(7, 40002), ...hello(sni)]));
    expect((await within(5000, refused, "the third connection's close")).length).toBe(0);
    await summaryCount(proxy, "refused_limit", "198.51.100.7", 1);
    await through(setup, new Uint8Array([...received(8), ...hello(sni)]), hello(sni).length);

    // Each CancelRequest counts under the limit too: one session of 198.51.100.7 makes room for it.
    open.shift()?.destroy();
    await summaryCount(proxy, "proxied", "198.51.100.7", 1);
    const cancel = cancelRequest(1234, 5678);
    expect(await through(setup, new Uint8Array([...received(7, 40003), ...cancel]), 16, false)).toEqual(cancel);
    expect(await summaryCount(proxy, "cancel_forwarded", "198.51.100.7", 1)).toMatchObject({ tunnels: 1 });
    // The balancer's own address has sessions open, 198.51.100.9 has none: the cancel follows the header.
    const stranger = await rawConnect(proxy.port);
    stranger.write(new Uint8Array([...received(9), ...cancel]));
    await summaryCount(proxy, "cancel_unroutable", "198.51.100.9", 1);
  });

  test("with --send-proxy v2 the tunnel gets a header generated from the PROXY source, before sessions and cancels", async () => {
    const setup = await proxyWith(["--send-proxy", "v2"]);
    const sni = `s-${unique()}.replay.test`;
    const expected = new Uint8Array([...generated("9c40"), ...hello(sni)]);
    expect(await through(setup, new Uint8Array([...received(7), ...hello(sni)]), expected.length)).toEqual(expected);
    const cancel = cancelRequest(4321, 8765);
    const forwarded = new Uint8Array([...generated("9c41"), ...cancel]);
    expect(await through(setup, new Uint8Array([...received(7, 40001), ...cancel]), forwarded.length, false)).toEqual(forwarded);
  });
});

describe.skipIf(noRedis !== null)("--proxy-replay off in a fleet", () => {
  let redis: RedisServer;
  let a: ProxyProcess;
  let b: ProxyProcess;
  let session: Socket;
  let backend: ReturnType<typeof recordingServer>;

  beforeAll(async () => {
    backend = recordingServer();
    redis = await startRedis();
    const name = fleetName();
    const env = { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` };
    [a, b] = await Promise.all([
      fleetProxy(redis.url, name, "node-a", [...BALANCER, "--send-proxy", "v2"], env),
      fleetProxy(redis.url, name, "node-b", BALANCER, env),
    ]);
  });
  afterAll(async () => {
    session?.destroy();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    backend?.close();
  });

  test("a cancel relayed from the other proxy reaches the session's tunnel with a header naming the PROXY source", async () => {
    const sni = `f-${unique()}.replay.test`;
    const arriving = backend.next();
    session = await rawConnect(a.port);
    session.write(new Uint8Array([...received(7), ...hello(sni)]));
    await within(5000, arriving.then((c) => c.atLeast(generated("9c40").length + hello(sni).length)), "the session at the backend");

    const forwarded = backend.next();
    const cancel = cancelRequest(2468, 1357);
    const socket = await rawConnect(b.port);
    socket.write(new Uint8Array([...received(7, 40002), ...cancel]));
    await summaryCount(b, "cancel_relayed", "198.51.100.7", 1);
    const connection = await within(5000, forwarded, "the relayed cancel at the backend");
    await within(5000, connection.ended, "the relayed cancel's FIN");
    expect(connection.total()).toEqual(new Uint8Array([...generated("9c42"), ...cancel]));
    expect(await a.waitFor((l) => l.msg === "relayed cancel")).toMatchObject({ from: "node-b", client: "198.51.100.7", tunnels: 1 });
  });
});

import { describe, expect, test } from "bun:test";
import { startProxy } from "../helpers/proxy-process.ts";
import { recordingServer } from "../helpers/servers.ts";
import { echoConnection } from "../helpers/swarm.ts";
import { eventually, metric, openFds, processesMatching, rssBytes, scrape } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { fuzzCases, runFuzz } from "../helpers/fuzz-cases.ts";
import { fuzzAdmin } from "../helpers/fuzz-admin.ts";
import { concat, fromAscii } from "../../src/protocol/bytes.ts";
import { buildProxyV2 } from "../../src/protocol/proxy-v2.ts";
import { within } from "../helpers/deadline.ts";
import { ALERT_INTERNAL_ERROR, ALERT_UNRECOGNIZED_NAME, SSL_REQUEST } from "../helpers/wire.ts";
import { isValidHostname } from "../../src/protocol/hostname.ts";

const hello = (name: string) => records(clientHello({ names: [name] }));

/** Sends `bytes` and resolves with what came back before the proxy closed the connection (which it must, soon). */
async function exchange(port: number, bytes: Uint8Array, localAddress?: string): Promise<Buffer> {
  const socket = await rawConnect(port, localAddress);
  const reply = readUntilClose(socket);
  socket.write(bytes);
  return within(5000, reply, "the proxy closing a connection it should refuse");
}

/** Opens a connection that is proxied and kept open; resolves once the echo of its hello came back. */
async function held(port: number, sni: string, localAddress?: string) {
  const socket = await rawConnect(port, localAddress);
  const echoed = new Promise((resolve) => socket.once("data", resolve));
  socket.write(hello(sni));
  await within(5000, echoed, `the echo through ${sni}`);
  return socket;
}

test("--allow-sni-suffix matches on label boundaries, refusing before any tunnel work", async () => {
  const proxy = await startProxy(["--allow-sni-suffix", ".good.test"]);
  expect((await echoConnection(proxy.port, "db.good.test", 100, 1)).ok).toBe(true);
  for (const name of ["xgood.test", "good.test.evil.test", "db.good.test2"]) {
    expect([...(await exchange(proxy.port, hello(name)))]).toEqual(ALERT_UNRECOGNIZED_NAME);
  }
  await proxy.waitFor(() => proxy.lines.filter((l) => l.outcome === "refused_not_allowed").length === 3);
  expect(proxy.lines.filter((l) => l.msg === "tunnel starting").map((l) => l.tunnel)).toEqual(["cft-db.good.test"]);
  await proxy.stop();
});

describe("PROXY headers", () => {
  test("accepted from a trusted peer (127.0.0.2), refused from another (127.0.0.1)", async () => {
    const backend = recordingServer();
    const proxy = await startProxy(["--trusted-proxies", "127.0.0.2/32"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` });
    const header = fromAscii("PROXY TCP4 198.51.100.4 10.0.0.1 40000 19000\r\n");
    const body = concat([header, hello("db.trust.test")]);
    const next = backend.next();
    const trusted = await rawConnect(proxy.port, "127.0.0.2");
    trusted.write(body);
    expect([...(await (await next).atLeast(body.length))]).toEqual([...body]);
    trusted.destroy();
    expect((await exchange(proxy.port, body, "127.0.0.1")).length).toBe(0);
    const refusal = await proxy.waitFor((l) => l.outcome === "refused_untrusted_proxy");
    expect(refusal.client).toBe("127.0.0.1");
    const accepted = await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "proxied");
    expect(accepted).toMatchObject({ client: "127.0.0.2", proxy_src: "198.51.100.4" });
    await proxy.stop();
    backend.close();
  });

  test.each(["v1", "v2"])("--send-proxy %s carries the real client address, byte-exact", async (version) => {
    const backend = recordingServer();
    const proxy = await startProxy(["--send-proxy", version, "--listen", ":0"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` });
    const next = backend.next();
    const socket = await rawConnect(proxy.port, "127.0.0.3");
    const body = hello("db.send.test");
    socket.write(body);
    const source = { address: "127.0.0.3", port: socket.localPort as number };
    const destination = { address: "127.0.0.1", port: proxy.port };
    const header =
      version === "v1"
        ? fromAscii(`PROXY TCP4 127.0.0.3 127.0.0.1 ${source.port} ${proxy.port}\r\n`)
        : buildProxyV2(source, destination, 4);
    expect([...(await (await next).atLeast(header.length + body.length))]).toEqual([...header, ...body]);
    socket.destroy();
    await proxy.stop();
    backend.close();
  });
});

describe("connection limits", () => {
  test("--max-conns-per-ip refuses the next connection and recovers when one closes", async () => {
    const proxy = await startProxy(["--max-conns-per-ip", "2", "--metrics-listen", "127.0.0.1:0"]);
    const a = await held(proxy.port, "a.limit.test");
    const b = await held(proxy.port, "b.limit.test");
    expect((await exchange(proxy.port, hello("c.limit.test"))).length).toBe(0);
    const other = await held(proxy.port, "d.limit.test", "127.0.0.2");
    a.destroy();
    await proxy.waitFor((l) => l.msg === "connection" && l.sni === "a.limit.test");
    const c = await held(proxy.port, "c.limit.test");
    const samples = await scrape(proxy.adminPort as number);
    expect(metric(samples, "tcp_tunnel_proxy_connections_total", { outcome: "refused_limit" })).toBe(1);
    expect(metric(samples, "tcp_tunnel_proxy_refusals_total", { reason: "limit_per_ip" })).toBe(1);
    for (const socket of [b, c, other]) socket.destroy();
    await proxy.stop();
  });

  test("--max-connections refuses across addresses and recovers", async () => {
    const proxy = await startProxy(["--max-connections", "2"]);
    const a = await held(proxy.port, "a.total.test", "127.0.0.1");
    const b = await held(proxy.port, "b.total.test", "127.0.0.2");
    expect((await exchange(proxy.port, hello("c.total.test"), "127.0.0.3")).length).toBe(0);
    a.destroy();
    await proxy.waitFor((l) => l.msg === "connection" && l.sni === "a.total.test");
    expect((await echoConnection(proxy.port, "c.total.test", 100, 1)).ok).toBe(true);
    b.destroy();
    await proxy.stop();
  });

  test("the per-IP count follows a trusted PROXY source", async () => {
    const proxy = await startProxy(["--max-conns-per-ip", "1", "--trusted-proxies", "127.0.0.1"]);
    const header = fromAscii("PROXY TCP4 198.51.100.9 10.0.0.1 40000 19000\r\n");
    const first = await rawConnect(proxy.port);
    const echoed = new Promise((resolve) => first.once("data", resolve));
    first.write(concat([header, hello("a.src.test")]));
    await echoed;
    expect((await exchange(proxy.port, concat([header, hello("b.src.test")]))).length).toBe(0);
    expect(await proxy.waitFor((l) => l.outcome === "refused_limit")).toMatchObject({ proxy_src: "198.51.100.9" });
    first.destroy();
    await proxy.stop();
  });

  test("a PROXY source equal to the peer itself is not counted twice", async () => {
    const proxy = await startProxy(["--max-conns-per-ip", "1", "--trusted-proxies", "127.0.0.1"]);
    const socket = await rawConnect(proxy.port);
    const echoed = new Promise((resolve) => socket.once("data", resolve));
    socket.write(concat([fromAscii("PROXY TCP4 127.0.0.1 127.0.0.1 40000 19000\r\n"), hello("self.src.test")]));
    await echoed;
    socket.destroy();
    expect(await proxy.waitFor((l) => l.msg === "connection")).toMatchObject({ outcome: "proxied", proxy_src: "127.0.0.1" });
    await proxy.stop();
  });
});

describe("timeouts", () => {
  test("a client trickling one byte at a time is closed at the hello timeout, measured from accept", async () => {
    const proxy = await startProxy(["--hello-timeout", "500ms"]);
    const socket = await rawConnect(proxy.port);
    const closed = readUntilClose(socket);
    const bytes = hello("trickle.test");
    let stop = false;
    void closed.then(() => (stop = true));
    const started = performance.now();
    for (let i = 0; i < bytes.length && !stop; i++) {
      socket.write(bytes.subarray(i, i + 1));
      await Bun.sleep(25);
    }
    expect((await closed).length).toBe(0);
    expect(performance.now() - started).toBeLessThan(bytes.length * 25);
    expect(await proxy.waitFor((l) => l.msg === "connection")).toMatchObject({ outcome: "timeout" });
    await proxy.stop();
  });

  test("a PostgreSQL backend that never answers the SSLRequest is bounded by the hello timeout (alert 80)", async () => {
    const proxy = await startProxy(["--hello-timeout", "400ms"], { FAKE_CF_MODE: "sink" });
    const socket = await rawConnect(proxy.port);
    const closed = readUntilClose(socket);
    socket.write(SSL_REQUEST);
    socket.write(hello("silent.pg.test"));
    expect([...(await closed)]).toEqual([0x53, ...ALERT_INTERNAL_ERROR]);
    const line = await proxy.waitFor((l) => l.msg === "connection");
    expect(line).toMatchObject({ outcome: "timeout", reason: "backend did not answer the SSLRequest" });
    await proxy.stop();
  });

  test("1,500 silent connections are all closed after the hello timeout and memory comes back", async () => {
    const proxy = await startProxy(["--hello-timeout", "2s", "--log-level", "info", "--metrics-listen", "127.0.0.1:0"]);
    const pid = proxy.proc.pid;
    await echoConnection(proxy.port, "warm.silent.test", 100, 1);
    const rssBefore = rssBytes(pid);
    const fdsBefore = openFds(pid);
    // Each socket is read from its connect on: one the proxy closes before the last connect completes is seen closing.
    const closes: Promise<Buffer>[] = [];
    const connects = Array.from({ length: 1500 }, () => rawConnect(proxy.port).then((socket) => void closes.push(readUntilClose(socket))));
    await within(30_000, Promise.all(connects), "1,500 connects");
    const peakFds = openFds(pid);
    await within(30_000, Promise.all(closes), "the proxy closing all 1,500 at the hello timeout");
    const samples = await scrape(proxy.adminPort as number);
    expect(peakFds - fdsBefore).toBeGreaterThanOrEqual(1400);
    expect(metric(samples, "tcp_tunnel_proxy_connections_total", { outcome: "timeout" })).toBe(1500);
    expect(metric(samples, "tcp_tunnel_proxy_active_connections")).toBe(0);
    expect(openFds(pid)).toBeLessThanOrEqual(fdsBefore);
    expect(rssBytes(pid) - rssBefore).toBeLessThan(16 * 1024 * 1024);
    await proxy.stop();
  }, 60_000);
});

test("a spray of 200 hostnames never runs more than --max-tunnels processes and busy tunnels keep serving", async () => {
  const tag = unique();
  const suffix = `${tag}.spray.test`;
  const proxy = await startProxy(["--allow-sni-suffix", suffix, "--max-tunnels", "4", "--log-level", "info"]);
  const busy = [await held(proxy.port, `busy1.${suffix}`), await held(proxy.port, `busy2.${suffix}`)];
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, processesMatching(`.${suffix}`).length)), 5);
  const spray = await Promise.all(Array.from({ length: 200 }, (_, i) => echoConnection(proxy.port, `h${i}.${suffix}`, 64, i)));
  clearInterval(sampler);
  expect(spray.some((r) => r.ok)).toBe(true);
  expect(peak).toBeLessThanOrEqual(4);
  for (const socket of busy) {
    const echoed = new Promise<Buffer>((resolve) => socket.once("data", resolve));
    socket.write("still busy");
    expect((await echoed).toString()).toBe("still busy");
  }
  expect(proxy.lines.some((l) => l.outcome === "tunnel_failed" && String(l.reason).includes("--max-tunnels"))).toBe(true);
  for (const socket of busy) socket.destroy();
  await proxy.stop();
}, 60_000);

test("fuzz: random and mutated preludes never crash the proxy, start a disallowed tunnel or leak a socket", async () => {
  const suffix = "fuzz.test";
  const proxy = await startProxy(
    ["--metrics-listen", "127.0.0.1:0", "--log-level", "info", "--hello-timeout", "300ms", "--allow-sni-suffix", suffix,
      "--trusted-proxies", "127.0.0.1", "--max-tunnels", "8"],
  );
  const pid = proxy.proc.pid;
  const fdsBefore = openFds(pid);
  const result = await runFuzz(proxy.port, fuzzCases(7, 600, suffix), 32);
  expect(result).toEqual({ closed: 600, failedToConnect: 0 });
  expect(proxy.proc.exitCode).toBeNull();
  await proxy.waitFor(() => proxy.lines.filter((l) => l.msg === "connection").length >= 600);
  const samples = await scrape(proxy.adminPort as number);
  expect(metric(samples, "tcp_tunnel_proxy_active_connections")).toBe(0);
  const starts = proxy.lines.filter((l) => l.msg === "tunnel starting").map((l) => String(l.tunnel));
  for (const tunnel of starts) expect(isValidHostname(tunnel) && tunnel.endsWith(`.${suffix}`)).toBe(true);
  const tunnelFds = 3 * new Set(starts).size;
  await eventually(() => openFds(pid), (fds) => fds <= fdsBefore + tunnelFds);
  expect(await fuzzAdmin(proxy.adminPort as number, 7, 150)).toEqual({ requests: 150, breaches: [] });
  expect(proxy.lines.filter((l) => l.msg === "tunnel starting" && String(l.tunnel).includes("evil"))).toEqual([]);
  expect(await proxy.stop()).toBe(0);
}, 60_000);

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { recordingServer, tlsEchoServer, type Backend } from "../helpers/servers.ts";
import { echoRoundTrip, rawConnect, readUntilClose, tlsClient } from "../helpers/clients.ts";
import { clientHello, fixture, records, startupMessage } from "../helpers/builders.ts";
import { concat, fromAscii } from "../../src/protocol/bytes.ts";
import { ALERT_UNRECOGNIZED_NAME, SSL_REQUEST, TLS_REQUIRED_ERROR } from "../helpers/wire.ts";

const stateDir = () => mkdtempSync(join(tmpdir(), "ttp-cf-"));
const hello = (name: string) => records(clientHello({ names: [name] }));

describe("TLS through the proxy to a TLS server behind the fake cloudflared", () => {
  let backend: Backend;
  let proxy: ProxyProcess;
  let dir: string;

  beforeAll(async () => {
    backend = await tlsEchoServer(["postgresql", "h2"]);
    dir = stateDir();
    proxy = await startProxy([], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}`, FAKE_CF_STATE_DIR: dir });
  });
  afterAll(async () => {
    await proxy.stop();
    backend.close();
  });

  test("a verified handshake and echo, the tunnel named from the SNI", async () => {
    const socket = await tlsClient(proxy.port, "db-1.demo.test", { alpn: ["postgresql"] });
    expect(socket.authorized).toBe(true);
    expect(socket.alpnProtocol).toBe("postgresql");
    expect((await echoRoundTrip(socket, fromAscii("ping"))).toString()).toBe("ping");
    socket.end();
    const summary = await proxy.waitFor((l) => l.msg === "connection" && l.sni === "db-1.demo.test");
    expect(summary).toMatchObject({ tunnel: "cft-db-1.demo.test", outcome: "proxied", client: "127.0.0.1" });
    expect(Number(summary.bytes_in)).toBeGreaterThan(0);
    expect(Number(summary.bytes_out)).toBeGreaterThan(0);
    expect(existsSync(join(dir, "cft-db-1.demo.test.pids"))).toBe(true);
  });

  test("a second connection reuses the warm tunnel", async () => {
    const socket = await tlsClient(proxy.port, "db-1.demo.test");
    expect((await echoRoundTrip(socket, fromAscii("again"))).toString()).toBe("again");
    socket.end();
    await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "proxied" && proxy.lines.filter((x) => x.msg === "connection").length >= 2);
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting" && l.tunnel === "cft-db-1.demo.test")).toHaveLength(1);
    expect(readFileSync(join(dir, "cft-db-1.demo.test.pids"), "utf8").trim().split("\n")).toHaveLength(1);
  });

  test("readiness opened no connection to the tunnel", async () => {
    const accepted = readFileSync(join(dir, "cft-db-1.demo.test.conns"), "utf8").trim().split("\n").length;
    expect(accepted).toBe(2);
  });
});

describe("refusals", () => {
  let proxy: ProxyProcess;
  let dir: string;

  beforeAll(async () => {
    dir = stateDir();
    proxy = await startProxy(["--hello-timeout", "400ms"], { FAKE_CF_STATE_DIR: dir });
  });
  afterAll(async () => {
    await proxy.stop();
  });

  async function exchange(bytes: Uint8Array): Promise<Buffer> {
    const socket = await rawConnect(proxy.port);
    const reply = readUntilClose(socket);
    socket.write(bytes);
    return reply;
  }

  test("no SNI: unrecognized_name alert, no tunnel", async () => {
    expect([...(await exchange(records(clientHello({ alpn: ["h2"] }))))]).toEqual(ALERT_UNRECOGNIZED_NAME);
  });

  test("invalid SNI: alert", async () => {
    expect([...(await exchange(hello("bad_host.test")))]).toEqual(ALERT_UNRECOGNIZED_NAME);
    expect([...(await exchange(hello("--url=x.test")))]).toEqual(ALERT_UNRECOGNIZED_NAME);
  });

  test("malformed TLS: alert", async () => {
    const bad = hello("x.demo.test");
    bad[5 + 4 + 2 + 32] = 0xff;
    expect([...(await exchange(bad))]).toEqual(ALERT_UNRECOGNIZED_NAME);
  });

  test("plaintext PostgreSQL StartupMessage: ErrorResponse", async () => {
    expect([...(await exchange(startupMessage({ user: "app", database: "app" })))]).toEqual(TLS_REQUIRED_ERROR);
  });

  test("unknown first byte: closed with nothing written", async () => {
    expect((await exchange(fromAscii("GET / HTTP/1.1\r\n\r\n"))).length).toBe(0);
  });

  test("untrusted PROXY header: closed, the log names the flag", async () => {
    expect((await exchange(concat([fromAscii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), hello("x.demo.test")]))).length).toBe(0);
    const line = await proxy.waitFor((l) => l.outcome === "refused_untrusted_proxy");
    expect(String(line.reason)).toContain("--trusted-proxies");
    expect(String(line.reason)).toContain("TRUSTED_PROXIES");
  });

  test("silent client: closed after the hello timeout with nothing written", async () => {
    const started = performance.now();
    const socket = await rawConnect(proxy.port);
    expect((await readUntilClose(socket)).length).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(350);
    await proxy.waitFor((l) => l.outcome === "timeout");
  });

  test("none of these started a tunnel", () => {
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting")).toHaveLength(0);
    expect(existsSync(join(dir, "cft-x.demo.test.pids"))).toBe(false);
  });
});

test("--on-no-sni ok answers OK", async () => {
  const proxy = await startProxy(["--on-no-sni", "ok"]);
  const socket = await rawConnect(proxy.port);
  const reply = readUntilClose(socket);
  socket.write(records(clientHello({})));
  expect((await reply).toString()).toBe("OK\n");
  await proxy.stop();
});

describe("PROXY headers and PostgreSQL replay, byte-exact", () => {
  let backend: ReturnType<typeof recordingServer>;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    backend = recordingServer(fromAscii("S"));
    proxy = await startProxy(["--trusted-proxies", "127.0.0.1"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` });
  });
  afterAll(async () => {
    await proxy.stop();
    backend.close();
  });

  test.each([
    ["v1", fromAscii("PROXY TCP4 203.0.113.7 10.0.0.1 51000 19000\r\n")],
    ["v1 TCP6", fromAscii("PROXY TCP6 2001:db8::7 2001:db8::1 51000 19000\r\n")],
    ["v2", fixtureV2()],
  ])("PROXY %s + TLS is replayed exactly", async (_, header) => {
    const body = concat([header, hello("db-2.demo.test"), fromAscii("after")]);
    const next = backend.next();
    const socket = await rawConnect(proxy.port);
    socket.write(body);
    const recorded = await next;
    expect([...(await recorded.atLeast(body.length))]).toEqual([...body]);
    socket.destroy();
  });

  test("SSLRequest: S answered, replayed to the backend, its S swallowed, then the hello", async () => {
    const header = fromAscii("PROXY TCP4 203.0.113.8 10.0.0.1 51001 19000\r\n");
    const next = backend.next();
    const socket = await rawConnect(proxy.port);
    const firstReply = new Promise<Buffer>((resolve) => socket.once("data", resolve));
    socket.write(concat([header, SSL_REQUEST]));
    expect((await firstReply).toString()).toBe("S");
    const rest = readUntilClose(socket);
    socket.write(fixture("psql").subarray(8));
    const expected = concat([header, SSL_REQUEST, fixture("psql").subarray(8)]);
    expect([...(await (await next).atLeast(expected.length))]).toEqual([...expected]);
    socket.end();
    expect((await rest).length).toBe(0);
  });
});

function fixtureV2(): Uint8Array {
  const header = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x12,
    203, 0, 113, 9, 10, 0, 0, 1, 0xc3, 0x50, 0x4a, 0x38, 0x04, 0x00, 0x03, 0x61, 0x62, 0x63]);
  return header;
}

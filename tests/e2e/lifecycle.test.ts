import { describe, expect, test } from "bun:test";
import { startProxy, freePort } from "../helpers/proxy-process.ts";
import { recordingServer } from "../helpers/servers.ts";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, metric, scrape, isAlive } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { transfer } from "../helpers/stream.ts";
import { within } from "../helpers/deadline.ts";
import { ALERT_INTERNAL_ERROR, PROXY_V2_SIGNATURE, SSL_REQUEST } from "../helpers/wire.ts";

const hello = (name: string) => records(clientHello({ names: [name] }));

describe("the backend side of the handshake", () => {
  test("a backend that hangs up before answering the SSLRequest fails the client at once", async () => {
    const proxy = await startProxy(["--hello-timeout", "30s"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${freePort()}` });
    const socket = await rawConnect(proxy.port);
    const answer = new Promise<Buffer>((resolve) => socket.once("data", resolve));
    socket.write(SSL_REQUEST);
    expect((await within(2000, answer, "the proxy's own S")).toString()).toBe("S");
    const rest = readUntilClose(socket);
    socket.write(hello(`pg-${unique()}.hangup.test`));
    expect([...(await within(3000, rest, "the client closed with an alert"))]).toEqual(ALERT_INTERNAL_ERROR);
    const line = await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "backend_error");
    expect(line.reason).toBe("backend closed before answering the SSLRequest");
    await proxy.stop();
  });

  test("a backend that answers the SSLRequest with N is backend_refused_tls; the client only ever saw our S", async () => {
    const proxy = await startProxy([], { FAKE_CF_MODE: "postgres", FAKE_CF_PG_REPLY: "N" });
    const socket = await rawConnect(proxy.port);
    const everything = readUntilClose(socket);
    socket.write(new Uint8Array([...SSL_REQUEST, ...hello(`pg-${unique()}.refuses.test`)]));
    expect((await within(3000, everything, "the refused client closed")).toString()).toBe("S");
    const line = await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "backend_refused_tls");
    expect(line.reason).toBe("backend answered the SSLRequest without S");
    expect(proxy.lines.some((l) => l.msg === "backend refused TLS")).toBe(true);
    await proxy.stop();
  });
});

test("a client that closes while its tunnel starts is logged timeout at once and costs no upstream connection", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ttp-vanish-"));
  const proxy = await startProxy([], { FAKE_CF_START_DELAY_MS: "1500", FAKE_CF_STATE_DIR: dir });
  const sni = `gone-${unique()}.vanish.test`;
  const socket = await rawConnect(proxy.port);
  socket.end(hello(sni));
  const line = await within(1000, proxy.waitFor((l) => l.msg === "connection" && l.sni === sni), "the summary of the departed client");
  expect(line).toMatchObject({ outcome: "timeout", reason: "client left before the tunnel was ready" });
  await within(5000, proxy.waitFor((l) => l.msg === "tunnel ready" && l.tunnel === `cft-${sni}`), "the tunnel's start");
  expect(existsSync(join(dir, `cft-${sni}.conns`))).toBe(false);
  await proxy.stop();
});

describe("byte accounting and half-close", () => {
  test("bytes_total counts each direction separately (a sink answers only the count)", async () => {
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0"], { FAKE_CF_MODE: "sink" });
    const prelude = hello(`sink-${unique()}.bytes.test`);
    const result = await within(10_000, transfer(proxy.port, prelude, 300_000), "the sink transfer");
    expect(result.tail).toBe(`${prelude.length + 300_000}\n`);
    const line = await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "proxied");
    expect(line).toMatchObject({ bytes_in: prelude.length + 300_000, bytes_out: result.received });
    const samples = await scrape(proxy.adminPort as number);
    expect(metric(samples, "tcp_tunnel_proxy_bytes_total", { direction: "client_to_backend" })).toBe(prelude.length + 300_000);
    expect(metric(samples, "tcp_tunnel_proxy_bytes_total", { direction: "backend_to_client" })).toBe(result.received);
    await proxy.stop();
  });

  for (const how of ["FIN", "reset"] as const) {
    test(`a backend that closes first (${how}) while the client still sends: the client is closed, nothing stays open`, async () => {
      const farewell = Buffer.from("goodbye\n");
      const backend = Bun.listen<string | undefined>({
        hostname: "127.0.0.1",
        port: 0,
        allowHalfOpen: true,
        data: undefined,
        socket: {
          data(socket) {
            if (socket.data === "said") return;
            socket.data = "said";
            socket.write(farewell);
            if (how === "FIN") socket.shutdown();
            else socket.terminate();
          },
        },
      });
      const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` });
      const socket = await rawConnect(proxy.port);
      const received = readUntilClose(socket);
      socket.write(hello(`first-${unique()}.close.test`));
      const pump = setInterval(() => socket.writable && socket.write(new Uint8Array(16 * 1024)), 1);
      const bytes = await within(5000, received, "the client closed after the backend did");
      clearInterval(pump);
      if (how === "FIN") expect(bytes.toString()).toBe(farewell.toString());
      await within(5000, proxy.waitFor((l) => l.msg === "connection"), "the connection's summary");
      expect(metric(await scrape(proxy.adminPort as number), "tcp_tunnel_proxy_active_connections")).toBe(0);
      backend.stop(true);
      await proxy.stop();
    });
  }

  test("a slow tunnel start while the client pushes 3 MiB: everything arrives, in order", async () => {
    const proxy = await startProxy([], { FAKE_CF_START_DELAY_MS: "800" });
    const prelude = hello(`slow-${unique()}.push.test`);
    const result = await within(15_000, transfer(proxy.port, prelude, 3 << 20, { echo: true }), "the echo of 3 MiB");
    expect(result.received).toBe(3 << 20);
    expect(result.receivedHash).toBe(result.sentHash);
    await proxy.stop();
  });
});

describe("an IPv6 client end to end", () => {
  test.each([
    ["v1", (client: number, local: number) => [...Buffer.from(`PROXY TCP6 ::1 ::1 ${client} ${local}\r\n`)]],
    ["v2", (client: number, local: number) => [
      ...PROXY_V2_SIGNATURE, 0x21, 0x21, 0x00, 0x24,
      ...new Array(15).fill(0), 1, ...new Array(15).fill(0), 1,
      client >> 8, client & 0xff, local >> 8, local & 0xff,
    ]],
  ] as const)("--send-proxy %s carries the IPv6 client address", async (mode, expected) => {
    const backend = recordingServer();
    const proxy = await startProxy(["--listen", "[::1]:0", "--send-proxy", mode], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` });
    const next = backend.next();
    const socket = await rawConnect(proxy.port, undefined, "::1");
    const body = hello(`v6-${unique()}.ipv6.test`);
    socket.write(body);
    const header = expected(socket.localPort as number, proxy.port);
    const got = await within(5000, (await next).atLeast(header.length + body.length), "the backend's copy");
    expect([...got]).toEqual([...header, ...body]);
    const line = await proxy.waitFor((l) => l.msg === "tunnel ready");
    expect(line.tunnel).toMatch(/^cft-v6-/);
    socket.destroy();
    const summary = await proxy.waitFor((l) => l.msg === "connection");
    expect(summary.client).toBe("::1");
    backend.close();
    await proxy.stop();
  });
});

test("a proxy started by a test dies with the runner, even on kill -9 of the runner", async () => {
  const script = `import { startProxy } from ${JSON.stringify(`${import.meta.dir}/../helpers/proxy-process.ts`)};
const proxy = await startProxy();
console.log(proxy.proc.pid);
await new Promise(() => undefined);`;
  const runner = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit", env: process.env });
  const reader = runner.stdout.getReader();
  const first = await within(15_000, reader.read(), "the runner printing its proxy's pid");
  const pid = Number(new TextDecoder().decode(first.value).trim());
  expect(pid).toBeGreaterThan(0);
  expect(existsSync(`/proc/${pid}`)).toBe(true);
  runner.kill("SIGKILL");
  await runner.exited;
  await within(3000, eventually(() => isAlive(pid), (running) => !running, 3000), "the proxy's exit");
});

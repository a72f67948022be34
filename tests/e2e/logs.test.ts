// Log lines an operator can trust, through the binary: an ordinary close gives no reason, a tunnel crash or an
// unreachable origin is said as such, refusals are sentences, wire strings are escaped and cut, listeners that cannot
// bind say why, SIGHUP is harmless, and balancer health checks stay quiet.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, proxyCommand, portRange, readLogLines, startProxy, type LogLine } from "../helpers/proxy-process.ts";
import { metric, scrape } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { testCerts } from "../helpers/certs.ts";
import { ALERT_INTERNAL_ERROR, PROXY_V2_SIGNATURE } from "../helpers/wire.ts";
import { within } from "../helpers/deadline.ts";

const hello = (sni: string) => records(clientHello({ names: [sni] }));

/** An HTTPS server for *.demo.test that answers every request, as the backend behind a forwarding tunnel. */
function httpsBackend() {
  const certs = testCerts();
  return Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: certs.cert, key: certs.key }, fetch: () => new Response("hello from the backend\n") });
}

describe("summary lines", () => {
  test("curl requests that succeed are proxied with no reason, whoever closes first", async () => {
    const backend = httpsBackend();
    const proxy = await startProxy(["--log-level", "info"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` });
    const sni = `curl-${unique()}.demo.test`;
    for (let i = 0; i < 12; i++) {
      const keepAlive = i % 2 === 0 ? [] : ["-H", "Connection: close"];
      // Not spawnSync: the backend runs in this process and must keep answering while curl waits.
      const curl = Bun.spawn(["curl", "-fsS", "--max-time", "10", "--cacert", testCerts().caPath, "--resolve", `${sni}:${proxy.port}:127.0.0.1`,
        ...keepAlive, `https://${sni}:${proxy.port}/`], { stdout: "pipe" });
      expect(await within(15_000, new Response(curl.stdout).text(), "curl's answer")).toBe("hello from the backend\n");
    }
    await proxy.waitFor(() => proxy.lines.filter((l) => l.msg === "connection").length >= 12);
    const lines = proxy.lines.filter((l) => l.msg === "connection");
    expect(lines.map((l) => [l.outcome, l.reason])).toEqual(lines.map(() => ["proxied", undefined]));
    await proxy.stop();
    backend.stop(true);
  }, 30_000);

  test("a connection whose tunnel process is killed under it is tunnel_failed, with the exit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ttp-logs-"));
    const proxy = await startProxy(["--log-level", "info"], { FAKE_CF_STATE_DIR: dir });
    const sni = `crash-${unique()}.logs.test`;
    const socket = await rawConnect(proxy.port);
    const closed = readUntilClose(socket);
    const echoed = new Promise((resolve) => socket.once("data", resolve));
    socket.write(hello(sni));
    await within(10_000, echoed, "the echo through the tunnel");
    const pid = Number(readFileSync(join(dir, `cft-${sni}.pids`), "utf8").trim());
    process.kill(pid, "SIGKILL");
    await within(10_000, closed, "the close after the crash");
    const line = await proxy.waitFor((l) => l.msg === "connection" && l.sni === sni);
    expect(line).toMatchObject({ outcome: "tunnel_failed", reason: "tunnel process exited unexpectedly (signal SIGKILL)" });
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("an origin cloudflared cannot reach: alert 80, backend_error naming the likely cause, counted once", async () => {
    const dead = freePort();
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${dead}` });
    const socket = await rawConnect(proxy.port);
    const reply = readUntilClose(socket);
    socket.write(hello(`origin-${unique()}.logs.test`));
    expect([...(await within(10_000, reply, "the refusal"))]).toEqual(ALERT_INTERNAL_ERROR);
    const line = await proxy.waitFor((l) => l.msg === "connection");
    expect(line.outcome).toBe("backend_error");
    expect(String(line.reason)).toContain("could not reach the origin");
    expect(metric(await scrape(proxy.adminPort as number), "tcp_tunnel_proxy_tunnel_origin_failures_total")).toBe(1);
    await proxy.stop();
  });

  test("plain HTTP to the client port is refused in a sentence", async () => {
    const proxy = await startProxy([]);
    Bun.spawnSync(["curl", "-sS", "--max-time", "5", `http://127.0.0.1:${proxy.port}/`]);
    const line = await proxy.waitFor((l) => l.msg === "connection");
    expect(line).toMatchObject({ outcome: "refused_invalid", reason: "first byte 0x47 is not TLS, PostgreSQL or PROXY" });
    await proxy.stop();
  });

  test("an invalid SNI from the wire is logged escaped and cut to 255 bytes; every line stays printable ASCII", async () => {
    const proxy = await startProxy(["--log-format", "plain"]);
    const sni = `evil\u001b[2J\r\n${"x".repeat(3000)}.test`;
    const socket = await rawConnect(proxy.port);
    const reply = readUntilClose(socket);
    socket.write(records(clientHello({ names: [sni] })));
    await within(5000, reply, "the refusal");
    await proxy.stop();
    const summary = proxy.lines.find((l) => l.level === "raw" && String(l.msg).includes("INFO  connection"));
    expect(summary).toBeDefined();
    const text = String(summary?.msg);
    expect(text).toMatch(/^[\x20-\x7e]*$/);
    expect(text).toContain('sni="evil\\u001b[2J\\r\\nxxx');
    const logged = /sni="((?:[^"\\]|\\.)*)"/.exec(text)?.[1] as string;
    expect(JSON.parse(`"${logged}"`)).toBe(sni.slice(0, 255));
    expect(text).toContain('reason="SNI is not a valid DNS hostname"');
  });

  test("a balancer's health check (PROXY v2 LOCAL, then close) is counted as such and logged only at debug", async () => {
    const proxy = await startProxy(["--trusted-proxies", "127.0.0.1", "--log-level", "info", "--metrics-listen", "127.0.0.1:0"]);
    for (let i = 0; i < 3; i++) {
      const socket = await rawConnect(proxy.port);
      socket.write(new Uint8Array([...PROXY_V2_SIGNATURE, 0x20, 0x00, 0x00, 0x00]));
      await Bun.sleep(20);
      socket.end();
      await readUntilClose(socket);
    }
    const samples = await scrape(proxy.adminPort as number);
    expect(metric(samples, "tcp_tunnel_proxy_connections_total", { outcome: "health_check" })).toBe(3);
    expect(metric(samples, "tcp_tunnel_proxy_connections_total", { outcome: "refused_invalid" })).toBe(0);
    expect(proxy.lines.filter((l) => l.msg === "connection")).toEqual([]);
    await proxy.stop();
  });
});

describe("start and signals", () => {
  test("a client or admin port in use: exit 1, the address and 'address already in use'", async () => {
    const held = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    for (const flag of ["--listen", "--metrics-listen"]) {
      const proc = Bun.spawn([...proxyCommand(), "--listen", "127.0.0.1:0", "--port-range", portRange(), "--log-format", "json", flag, `127.0.0.1:${held.port}`], { stderr: "pipe" });
      expect(await within(15_000, proc.exited, "the exit")).toBe(1);
      const lines = (await new Response(proc.stderr).text()).trim().split("\n").map((l) => JSON.parse(l));
      expect(lines.find((l) => l.msg === "cannot listen")).toMatchObject({ listen: `127.0.0.1:${held.port}`, reason: expect.stringContaining("address already in use") });
    }
    held.stop(true);
  });

  test("SIGHUP does not stop the proxy: one line, and it serves on", async () => {
    const proxy = await startProxy([]);
    proxy.proc.kill("SIGHUP");
    await proxy.waitFor((l) => String(l.msg).startsWith("SIGHUP ignored"));
    const socket = await rawConnect(proxy.port);
    const echoed = new Promise((resolve) => socket.once("data", resolve));
    socket.write(hello(`hup-${unique()}.logs.test`));
    await within(10_000, echoed, "an echo after SIGHUP");
    socket.destroy();
    expect(await proxy.stop()).toBe(0);
  });

  test("an admin server off loopback without a token file is warned about at start; build_info names the version", async () => {
    const proxy = await startProxy(["--metrics-listen", "0.0.0.0:0"]);
    expect(proxy.lines.find((l) => String(l.msg).startsWith("admin server off loopback without --admin-token-file"))).toMatchObject({ level: "warn" });
    const version = (JSON.parse(readFileSync(join(import.meta.dir, "../../package.json"), "utf8")) as { version: string }).version;
    expect(metric(await scrape(proxy.adminPort as number), "tcp_tunnel_proxy_build_info", { version })).toBe(1);
    await proxy.stop();
  });
});

test("a client reset: ordinary with nothing left to give it, said in a sentence with bytes still to receive", async () => {
  const proxy = await startProxy(["--log-level", "info"]);
  const quiet = `reset-${unique()}.logs.test`;
  const socket = await rawConnect(proxy.port);
  const echoed = new Promise((resolve) => socket.once("data", resolve));
  socket.write(hello(quiet));
  await within(10_000, echoed, "the echo");
  socket.resetAndDestroy();
  const quietLine = await proxy.waitFor((l) => l.msg === "connection" && l.sni === quiet);
  expect(quietLine).toMatchObject({ outcome: "proxied" });
  expect(quietLine.reason).toBeUndefined();
  // This client never reads, and writes 32 MiB: more than every buffer on the echo's path holds, so the path fills
  // and stays full, with the proxy holding bytes for the client. Nothing announces that; the client's own unsent
  // bytes standing still for a quarter second does.
  const busy = `busy-${unique()}.logs.test`;
  const reader = await rawConnect(proxy.port);
  reader.pause();
  reader.write(hello(busy));
  reader.write(new Uint8Array(32 * 1024 * 1024));
  await within(30_000, (async () => {
    for (let last = -1; last !== reader.writableLength || last === 0; ) {
      last = reader.writableLength;
      await Bun.sleep(250);
    }
  })(), "the echo's path to fill");
  reader.resetAndDestroy();
  const line = await proxy.waitFor((l) => l.msg === "connection" && l.sni === busy);
  // Whether the reset meets a read or a pending write is a race; the sentence says which.
  expect(line.outcome).toBe("proxied");
  expect(String(line.reason)).toMatch(/^(write to the client failed: )?the client reset the connection with bytes still to receive$/);
  await proxy.stop();
});

test("a malformed PROXY header from a trusted balancer is refused as malformed, never counted against a limit", async () => {
  const proxy = await startProxy(["--trusted-proxies", "127.0.0.1", "--max-conns-per-ip", "1"]);
  const held = await rawConnect(proxy.port);
  const echoed = new Promise((resolve) => held.once("data", resolve));
  held.write(hello(`held-${unique()}.logs.test`));
  await within(10_000, echoed, "the held connection's echo");
  const socket = await rawConnect(proxy.port);
  const reply = readUntilClose(socket);
  socket.write(new TextEncoder().encode("PROXY TCP4 198.051.100.1 10.0.0.1 40000 19000\r\n"));
  expect((await within(5000, reply, "the refusal")).length).toBe(0);
  const line = await proxy.waitFor((l) => l.msg === "connection" && l.outcome !== "proxied");
  expect(line).toMatchObject({ outcome: "refused_invalid", reason: "PROXY v1 header has an address that is not a plain address of its protocol" });
  held.destroy();
  await proxy.stop();
});

test("SIGHUP and SIGTERM while the workers start: the first changes nothing, the second drains once started", async () => {
  const proc = Bun.spawn([...proxyCommand(), "--listen", "127.0.0.1:0", "--workers", "4", "--port-range", portRange(), "--log-format", "json"], { stderr: "pipe" });
  const lines: LogLine[] = [];
  const read = readLogLines(proc.stderr, (line) => lines.push(line));
  await within(10_000, (async () => {
    while (!lines.some((l) => l.msg === "starting")) await Bun.sleep(1);
  })(), "the start line");
  proc.kill("SIGHUP");
  proc.kill("SIGTERM");
  expect(await within(20_000, proc.exited, "the exit")).toBe(0);
  await read;
  const msgs = lines.map((l) => l.msg);
  expect(msgs).toContain("SIGHUP ignored: configuration is read at start; apply a change with the upgrade procedure");
  expect(msgs.indexOf("draining")).toBeGreaterThan(msgs.indexOf("listening"));
  expect(msgs.at(-1)).toBe("stopped");
});

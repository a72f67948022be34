import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { eventually, metric, scrape } from "../helpers/admin.ts";
import { echoRoundTrip, rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { PROXY_V2_SIGNATURE, cancelRequest } from "../helpers/wire.ts";
import { within } from "../helpers/deadline.ts";

const stateDir = () => mkdtempSync(join(tmpdir(), "ttp-cancel-"));

/** PROXY v2, PROXY command, TCP over IPv4 (spec §2.2): signature, 0x21, 0x11, length 12, addresses, ports. */
function proxyV2From(source: [number, number, number, number]): Uint8Array {
  return new Uint8Array([...PROXY_V2_SIGNATURE, 0x21, 0x11, 0x00, 0x0c, ...source, 10, 0, 0, 1, 0x9c, 0x40, 0x4a, 0x38]);
}

/** Connections the fake tunnel for `tunnel` has accepted so far (each one would be a real upstream connection). */
function accepted(dir: string, tunnel: string): number {
  const file = join(dir, `${tunnel}.conns`);
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").length : 0;
}

/** The cancels the fake tunnel recorded: `<pid> <secret> <PROXY header hex or ->` per line. */
function recordedCancels(dir: string, tunnel: string): string[] {
  const file = join(dir, `${tunnel}.cancels`);
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n") : [];
}

/** A proxied session kept open, from `localAddress`; resolves once its hello came back through the echo tunnel. */
async function session(proxy: ProxyProcess, sni: string, localAddress: string, prefix: Uint8Array = new Uint8Array()): Promise<Socket> {
  const socket = await rawConnect(proxy.port, localAddress);
  const hello = records(clientHello({ names: [sni] }));
  await echoRoundTrip(socket, new Uint8Array([...prefix, ...hello]));
  return socket;
}

/** Sends a cancel and resolves with what the proxy wrote before it closed the connection, and its summary line. */
async function cancel(proxy: ProxyProcess, localAddress: string, prefix: Uint8Array = new Uint8Array()) {
  const before = proxy.lines.filter((l) => String(l.outcome).startsWith("cancel_")).length;
  const socket = await rawConnect(proxy.port, localAddress);
  const reply = readUntilClose(socket);
  socket.write(new Uint8Array([...prefix, ...cancelRequest(4242, 0x5eed)]));
  const bytes = await within(5000, reply, "the cancel connection's close");
  const summary = await proxy.waitFor(() => proxy.lines.filter((l) => String(l.outcome).startsWith("cancel_")).length > before);
  return { bytes, summary: proxy.lines.filter((l) => String(l.outcome).startsWith("cancel_"))[before] ?? summary };
}

describe("PostgreSQL cancel by client affinity", () => {
  test("a cancel reaches only its own client's tunnels, never starts one, and leaves the sessions alone", async () => {
    const dir = stateDir();
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0"], { FAKE_CF_STATE_DIR: dir });
    const [a, b, c] = [`a-${unique()}.cancel.test`, `b-${unique()}.cancel.test`, `c-${unique()}.cancel.test`];
    const sessionA = await session(proxy, a, "127.0.0.2");
    const sessionB = await session(proxy, b, "127.0.0.3");
    const starts = proxy.lines.filter((l) => l.msg === "tunnel starting").length;

    const fromA = await cancel(proxy, "127.0.0.2");
    expect(fromA.bytes.length).toBe(0);
    expect(fromA.summary).toMatchObject({ client: "127.0.0.2", outcome: "cancel_forwarded", tunnels: 1 });
    await eventually(() => accepted(dir, `cft-${a}`), (n) => n === 2);
    expect(accepted(dir, `cft-${b}`)).toBe(1);

    const stranger = await cancel(proxy, "127.0.0.4");
    expect(stranger.bytes.length).toBe(0);
    expect(stranger.summary).toMatchObject({ client: "127.0.0.4", outcome: "cancel_unroutable" });

    const sessionC = await session(proxy, c, "127.0.0.3");
    const fromB = await cancel(proxy, "127.0.0.3");
    expect(fromB.summary).toMatchObject({ outcome: "cancel_forwarded", tunnels: 2 });
    await eventually(() => [accepted(dir, `cft-${b}`), accepted(dir, `cft-${c}`)], ([nb, nc]) => nb === 2 && nc === 2);
    expect(accepted(dir, `cft-${a}`)).toBe(2);

    expect(proxy.lines.filter((l) => l.msg === "tunnel starting").length).toBe(starts + 1);
    for (const socket of [sessionA, sessionB, sessionC]) {
      expect((await echoRoundTrip(socket, new Uint8Array([7, 7, 7]))).toString("hex")).toBe("070707");
    }
    const samples = await scrape(proxy.adminPort as number);
    expect(metric(samples, "tcp_tunnel_proxy_cancel_requests_total", { result: "forwarded" })).toBe(2);
    expect(metric(samples, "tcp_tunnel_proxy_cancel_requests_total", { result: "unroutable" })).toBe(1);
    expect(metric(samples, "tcp_tunnel_proxy_connections_total", { outcome: "cancel_forwarded" })).toBe(2);
    sessionA.destroy();
    await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "proxied" && l.client === "127.0.0.2");
    const afterClose = await cancel(proxy, "127.0.0.2");
    expect(afterClose.summary).toMatchObject({ client: "127.0.0.2", outcome: "cancel_unroutable" });
    expect(accepted(dir, `cft-${a}`)).toBe(2);
    for (const socket of [sessionB, sessionC]) socket.destroy();
    expect(await proxy.stop()).toBe(0);
  });

  test("behind a trusted PROXY v2 balancer, two sources on one peer are told apart", async () => {
    const dir = stateDir();
    const proxy = await startProxy(["--trusted-proxies", "127.0.0.2"], { FAKE_CF_STATE_DIR: dir });
    const [a, b] = [`a-${unique()}.lb.test`, `b-${unique()}.lb.test`];
    const one = await session(proxy, a, "127.0.0.2", proxyV2From([198, 51, 100, 1]));
    const two = await session(proxy, b, "127.0.0.2", proxyV2From([198, 51, 100, 2]));
    const result = await cancel(proxy, "127.0.0.2", proxyV2From([198, 51, 100, 2]));
    expect(result.summary).toMatchObject({ client: "127.0.0.2", proxy_src: "198.51.100.2", outcome: "cancel_forwarded", tunnels: 1 });
    await eventually(() => accepted(dir, `cft-${b}`), (n) => n === 2);
    expect(accepted(dir, `cft-${a}`)).toBe(1);
    // The forward starts with the header as it was received, then the 16 bytes (key 4242, 0x5eed).
    const recorded = await eventually(() => recordedCancels(dir, `cft-${b}`), (lines) => lines.length === 1);
    expect(recorded).toEqual([`4242 ${0x5eed} ${Buffer.from(proxyV2From([198, 51, 100, 2])).toString("hex")}`]);
    one.destroy();
    two.destroy();
    await proxy.stop();
  });

  test("--cancel-fanout caps the targets at the most recently proxied tunnels", async () => {
    const dir = stateDir();
    const proxy = await startProxy(["--cancel-fanout", "2"], { FAKE_CF_STATE_DIR: dir });
    const names = [0, 1, 2].map((i) => `f${i}-${unique()}.fanout.test`);
    const sessions: Socket[] = [];
    for (const name of names) sessions.push(await session(proxy, name, "127.0.0.2"));
    const result = await cancel(proxy, "127.0.0.2");
    expect(result.summary).toMatchObject({ outcome: "cancel_forwarded", tunnels: 2 });
    await eventually(() => names.map((n) => accepted(dir, `cft-${n}`)), (counts) => counts[1] === 2 && counts[2] === 2);
    expect(accepted(dir, `cft-${names[0]}`)).toBe(1);
    for (const socket of sessions) socket.destroy();
    await proxy.stop();
  });

  test("--cancel-fanout 0 refuses a plaintext cancel with the TLS-required ErrorResponse", async () => {
    const dir = stateDir();
    const proxy = await startProxy(["--cancel-fanout", "0"], { FAKE_CF_STATE_DIR: dir });
    const name = `z-${unique()}.zero.test`;
    const held = await session(proxy, name, "127.0.0.2");
    const socket = await rawConnect(proxy.port, "127.0.0.2");
    const reply = readUntilClose(socket);
    socket.write(cancelRequest(1, 2));
    const bytes = await reply;
    expect(String.fromCharCode(bytes[0] as number)).toBe("E");
    expect(bytes.toString("latin1")).toContain("sslmode=require");
    await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "refused_no_sni");
    expect(accepted(dir, `cft-${name}`)).toBe(1);
    held.destroy();
    await proxy.stop();
  });

  test("a cancel while the client's tunnel restarts goes only to its tunnels that run; nothing is started", async () => {
    const dir = stateDir();
    const proxy = await startProxy(["--restart-backoff", "10s"], { FAKE_CF_STATE_DIR: dir });
    const [steady, crashing] = [`s-${unique()}.restart.test`, `k-${unique()}.restart.test`];
    const a = await session(proxy, steady, "127.0.0.2");
    const b = await session(proxy, crashing, "127.0.0.2");
    const pid = Number(readFileSync(join(dir, `cft-${crashing}.pids`), "utf8").trim());
    process.kill(pid, "SIGKILL");
    await proxy.waitFor((l) => l.msg === "tunnel restarting" && l.tunnel === `cft-${crashing}`);
    const starts = proxy.lines.filter((l) => l.msg === "tunnel starting").length;
    const result = await cancel(proxy, "127.0.0.2");
    expect(result.summary).toMatchObject({ outcome: "cancel_forwarded", tunnels: 1 });
    await eventually(() => accepted(dir, `cft-${steady}`), (n) => n === 2);
    expect(accepted(dir, `cft-${crashing}`)).toBe(1);
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting").length).toBe(starts);
    a.destroy();
    b.destroy();
    await proxy.stop();
  });
});

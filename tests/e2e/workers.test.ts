import { describe, expect, test } from "bun:test";
import { mkdtempSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { startProxy } from "../helpers/proxy-process.ts";
import { echoConnection } from "../helpers/swarm.ts";
import { eventually, metric, scrape, tunnels } from "../helpers/admin.ts";
import { echoRoundTrip, rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { cancelRequest } from "../helpers/wire.ts";

const hello = (sni: string) => records(clientHello({ names: [sni] }));

/** LISTEN sockets on 127.0.0.1:`port` (one per edge thread). */
function listeners(port: number): number {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/tcp", "utf8").split("\n").filter((line) => line.includes(hex) && / 0A /.test(line)).length;
}

async function held(port: number, sni: string, localAddress?: string): Promise<Socket> {
  const socket = await rawConnect(port, localAddress);
  let onClose = () => undefined as void;
  const refused = new Promise<never>((_, reject) => (onClose = () => reject(new Error(`${sni}: closed by the proxy`))));
  socket.once("close", onClose);
  try {
    await within(5000, Promise.race([echoRoundTrip(socket, hello(sni)), refused]), `the echo of ${sni}`);
  } finally {
    socket.off("close", onClose);
  }
  return socket;
}

/**
 * What a connection the proxy refuses gets before it is closed. The close may come so soon after the handshake that
 * the client sees a reset before its connect completes: that is a refusal with nothing written too.
 */
async function refusedBytes(port: number, localAddress: string): Promise<Buffer> {
  const socket = await rawConnect(port, localAddress).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ECONNRESET") return null;
    throw error;
  });
  return socket === null ? Buffer.alloc(0) : within(5000, readUntilClose(socket), "the refused connection's close");
}

async function retry<T>(attempt: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await attempt();
    } catch {
      await Bun.sleep(20);
    }
  }
}

describe("--workers 3: three edges, one supervisor, every contract unchanged", () => {
  test("three listeners share the port; 300 connections over 10 hostnames, every byte back, metrics exact, log lines whole", async () => {
    const proxy = await startProxy(["--workers", "3", "--metrics-listen", "127.0.0.1:0", "--log-level", "info"]);
    expect(listeners(proxy.port)).toBe(3);
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => echoConnection(proxy.port, `w${i % 10}.workers.test`, 1000 + i, i)));
    expect(results.filter((r) => !r.ok)).toEqual([]);
    await proxy.waitFor(() => proxy.lines.filter((l) => l.msg === "connection").length >= 300);
    const samples = await scrape(proxy.adminPort as number);
    const helloBytes = (i: number) => hello(`w${i % 10}.workers.test`).length + 1000 + i;
    const sent = Array.from({ length: 300 }, (_, i) => helloBytes(i)).reduce((a, b) => a + b, 0);
    expect(metric(samples, "tcp_tunnel_proxy_connections_total", { outcome: "proxied" })).toBe(300);
    expect(metric(samples, "tcp_tunnel_proxy_bytes_total", { direction: "client_to_backend" })).toBe(sent);
    expect(metric(samples, "tcp_tunnel_proxy_bytes_total", { direction: "backend_to_client" })).toBe(sent);
    expect(metric(samples, "tcp_tunnel_proxy_handshake_seconds_count")).toBe(300);
    expect(metric(samples, "tcp_tunnel_proxy_active_connections")).toBe(0);
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting")).toHaveLength(10);
    for (const tunnel of await tunnels(proxy.adminPort as number)) expect(tunnel.connections).toBe(0);
    expect(await proxy.stop()).toBe(0);
    expect(proxy.lines.filter((l) => l.level === "raw")).toEqual([]);
  });

  test("--max-conns-per-ip and --max-connections hold across edges", async () => {
    const proxy = await startProxy(["--workers", "3", "--max-conns-per-ip", "4", "--max-connections", "6"]);
    const sni = `l-${unique()}.limits.test`;
    const mine = await Promise.all([0, 1, 2, 3].map(() => held(proxy.port, sni, "127.0.0.2")));
    for (let i = 0; i < 3; i++) expect((await refusedBytes(proxy.port, "127.0.0.2")).length).toBe(0);
    const others = await Promise.all([0, 1].map(() => held(proxy.port, sni, "127.0.0.3")));
    for (let i = 0; i < 3; i++) expect((await refusedBytes(proxy.port, "127.0.0.4")).length).toBe(0);
    const refused = () => proxy.lines.filter((l) => l.outcome === "refused_limit").map((l) => l.reason);
    await within(5000, proxy.waitFor(() => refused().length >= 6), "six refusal summaries");
    const refusals = refused();
    expect(refusals.filter((r) => r === "too many connections from this address (--max-conns-per-ip)")).toHaveLength(3);
    expect(refusals.filter((r) => r === "too many connections in total (--max-connections)")).toHaveLength(3);
    (mine[0] as Socket).destroy();
    await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "proxied");
    // The count a worker frees reaches the main thread by message: a connection accepted in the same instant by
    // another edge may still see it taken, so the client retries as a refused one would.
    const again = await within(3000, retry(() => held(proxy.port, sni, "127.0.0.2")), "a connection in the freed place");
    for (const socket of [...mine, ...others, again]) socket.destroy();
    await proxy.stop();
  });

  test("a cancel reaches its client's tunnels whichever edges carry its sessions", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ttp-wcancel-"));
    const proxy = await startProxy(["--workers", "3", "--cancel-fanout", "16"], { FAKE_CF_STATE_DIR: dir });
    const names = Array.from({ length: 12 }, (_, i) => `c${i}-${unique()}.wcancel.test`);
    const sessions = await Promise.all(names.map((name) => held(proxy.port, name, "127.0.0.2")));
    const socket = await rawConnect(proxy.port, "127.0.0.2");
    const reply = readUntilClose(socket);
    socket.write(cancelRequest(99, 1234));
    expect((await within(5000, reply, "the cancel's close")).length).toBe(0);
    const line = await proxy.waitFor((l) => l.outcome === "cancel_forwarded");
    expect(line.tunnels).toBe(12);
    const conns = (name: string) => (existsSync(join(dir, `cft-${name}.conns`)) ? readFileSync(join(dir, `cft-${name}.conns`), "utf8").trim().split("\n").length : 0);
    await eventually(() => names.map(conns), (counts) => counts.every((n) => n === 2));
    for (const session of sessions) session.destroy();
    await proxy.stop();
  });

  test("the supervisor's idle stops race the edges' lease caches: with --idle-timeout 0, 400 connections all succeed", async () => {
    const proxy = await startProxy(["--workers", "3", "--idle-timeout", "0", "--metrics-listen", "127.0.0.1:0", "--log-level", "info"]);
    const sni = `race-${unique()}.idle.test`;
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => echoConnection(proxy.port, sni, 200, round * 20 + i)));
      expect(results.filter((r) => !r.ok)).toEqual([]);
    }
    // An idle stop (or one abandoned to a new lease) came while the rounds ran; its line may arrive a little later.
    const roundsEnded = Date.now();
    await proxy.waitFor((l) => ["tunnel stopped", "tunnel stop abandoned"].includes(l.msg) && Date.parse(String(l.ts)) <= roundsEnded, 5000);
    await eventually(async () => metric(await scrape(proxy.adminPort as number), "tcp_tunnel_proxy_active_connections"), (n) => n === 0);
    await within(5000, eventually(() => tunnels(proxy.adminPort as number), (list) => list.length === 0), "the idle tunnel's stop at the end");
    expect(proxy.lines.filter((l) => l.msg === "connection" && l.outcome !== "proxied")).toEqual([]);
    await proxy.stop();
  });

  test("SIGTERM drains every edge: the open connections finish, new ones are refused, exit 0", async () => {
    const proxy = await startProxy(["--workers", "3", "--metrics-listen", "127.0.0.1:0"]);
    const sessions = await Promise.all(Array.from({ length: 9 }, () => held(proxy.port, `d-${unique()}.drain.test`)));
    proxy.proc.kill("SIGTERM");
    await proxy.waitFor((l) => l.msg === "draining");
    await within(2000, eventually(() => listeners(proxy.port), (n) => n === 0), "every edge closing its listener");
    expect((await fetch(`http://127.0.0.1:${proxy.adminPort}/healthz`)).status).toBe(503);
    await expect(rawConnect(proxy.port)).rejects.toThrow();
    for (const session of sessions) expect((await echoRoundTrip(session, new Uint8Array([1, 2, 3]))).length).toBe(3);
    for (const session of sessions) session.end();
    expect(await within(5000, proxy.proc.exited, "the exit after the drain")).toBe(0);
  });
});

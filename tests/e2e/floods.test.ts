// Floods through the compiled binary: clients behind a balancer counted as themselves, cancel floods held to
// --cancel-rate, start storms held to --tunnel-start-rate, and busy tunnels kept from eviction by --evict-min-idle.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { portRange, startProxy } from "../helpers/proxy-process.ts";
import { metric, scrape } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { ALERT_INTERNAL_ERROR, PROXY_V2_SIGNATURE, cancelRequest } from "../helpers/wire.ts";
import { within } from "../helpers/deadline.ts";

const hello = (sni: string) => records(clientHello({ names: [sni] }));
const proxyV1 = (source: string) => new TextEncoder().encode(`PROXY TCP4 ${source} 10.0.0.1 40000 19000\r\n`);
/** PROXY v2 LOCAL (a balancer's health check): signature, version 2 command LOCAL, family UNSPEC, length 0. */
const LOCAL = new Uint8Array([...PROXY_V2_SIGNATURE, 0x20, 0x00, 0x00, 0x00]);

/**
 * Sends `bytes` and resolves once something came back — the echo tunnel's copy of them (echoed), or a refusal (an
 * alert) — or the proxy closed the connection without a byte.
 */
function open(port: number, bytes: Uint8Array): Promise<{ socket: Socket; echoed: boolean; received: Buffer }> {
  return rawConnect(port).then((socket) => {
    const result = new Promise<{ socket: Socket; echoed: boolean; received: Buffer }>((resolve) => {
      socket.once("data", (chunk: Buffer) => resolve({ socket, echoed: chunk[0] === bytes[0], received: chunk }));
      socket.once("close", () => resolve({ socket, echoed: false, received: Buffer.alloc(0) }));
      socket.once("error", () => undefined);
    });
    socket.write(bytes);
    return within(30_000, result, "an answer or a close");
  });
}

describe("--max-conns-per-ip behind a trusted balancer", () => {
  test("40 connections from one balancer carrying 20 clients (2 each, limit 2) are all served; a 3rd from one is refused with nothing written", async () => {
    const proxy = await startProxy(["--trusted-proxies", "127.0.0.1", "--max-conns-per-ip", "2", "--metrics-listen", "127.0.0.1:0"]);
    const sni = `b-${unique()}.balancer.test`;
    const sources = Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}`);
    const held = await Promise.all([...sources, ...sources].map((source) => open(proxy.port, new Uint8Array([...proxyV1(source), ...hello(sni)]))));
    expect(held.filter((h) => !h.echoed)).toHaveLength(0);
    const health = await Promise.all(Array.from({ length: 5 }, () => rawConnect(proxy.port)));
    for (const socket of health) socket.write(LOCAL);
    const third = await open(proxy.port, new Uint8Array([...proxyV1(sources[0] as string), ...hello(sni)]));
    expect(third.echoed).toBe(false);
    expect(third.received.length).toBe(0);
    const refused = await proxy.waitFor((l) => l.outcome === "refused_limit");
    expect(refused).toMatchObject({ client: "127.0.0.1", proxy_src: sources[0], reason: expect.stringContaining("--max-conns-per-ip") });
    for (const socket of health) socket.destroy();
    for (const h of held) h.socket.destroy();
    await proxy.stop();
  });
});

describe("--cancel-rate", () => {
  test("1,000 cancels from an address with one session: at most the burst and the rate reach the backend", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ttp-flood-"));
    const proxy = await startProxy(["--cancel-rate", "10", "--metrics-listen", "127.0.0.1:0"], { FAKE_CF_STATE_DIR: dir });
    const sni = `c-${unique()}.flood.test`;
    const session = await open(proxy.port, hello(sni));
    expect(session.echoed).toBe(true);
    const started = performance.now();
    const replies = await Promise.all(Array.from({ length: 1000 }, async () => {
      const socket = await rawConnect(proxy.port);
      const reply = readUntilClose(socket);
      socket.write(cancelRequest(7, 7));
      return within(20_000, reply, "the cancel's close");
    }));
    const seconds = (performance.now() - started) / 1000;
    expect(replies.every((bytes) => bytes.length === 0)).toBe(true);
    await proxy.waitFor(() => proxy.lines.filter((l) => String(l.outcome).startsWith("cancel_")).length >= 1000, 20_000);
    const samples = await scrape(proxy.adminPort as number);
    const forwarded = metric(samples, "tcp_tunnel_proxy_cancel_requests_total", { result: "forwarded" });
    const limited = metric(samples, "tcp_tunnel_proxy_cancel_requests_total", { result: "limited" });
    expect(forwarded + limited).toBe(1000);
    expect(forwarded).toBeGreaterThanOrEqual(10);
    expect(forwarded).toBeLessThanOrEqual(10 + Math.ceil(seconds * 10) + 1);
    expect(proxy.lines.find((l) => l.outcome === "cancel_limited")?.reason).toContain("--cancel-rate");
    const cancels = join(dir, `cft-${sni}.cancels`);
    expect(existsSync(cancels) ? readFileSync(cancels, "utf8").trim().split("\n").length : 0).toBeLessThanOrEqual(forwarded);
    session.socket.destroy();
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 40_000);
});

describe("start storms", () => {
  test("200 new hostnames at once: at most --tunnel-start-rate start, the rest get alert 80 naming the flag", async () => {
    // A rate well below how fast even a loaded machine reads 200 ClientHellos, so the flood always exceeds it.
    const rate = 5;
    const suffix = `${unique()}.storm.test`;
    const proxy = await startProxy(["--allow-sni-suffix", suffix, "--tunnel-start-rate", String(rate), "--port-range", portRange(250), "--log-level", "info",
      "--metrics-listen", "127.0.0.1:0"]);
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => open(proxy.port, hello(`h${i}.${suffix}`))));
    const seconds = (performance.now() - started) / 1000;
    const spawned = proxy.lines.filter((l) => l.msg === "tunnel starting").length;
    expect(spawned).toBeGreaterThanOrEqual(rate);
    expect(spawned).toBeLessThanOrEqual(rate + Math.ceil(seconds * rate) + 1);
    const refused = results.filter((r) => !r.echoed);
    expect(refused.length).toBeGreaterThanOrEqual(200 - spawned);
    for (const r of refused) expect([...r.received]).toEqual(ALERT_INTERNAL_ERROR);
    const line = await proxy.waitFor((l) => l.outcome === "tunnel_failed");
    expect(String(line.reason)).toContain("--tunnel-start-rate");
    await proxy.waitFor(() => proxy.lines.filter((l) => l.outcome === "tunnel_failed").length >= refused.length);
    const samples = await scrape(proxy.adminPort as number);
    expect(metric(samples, "tcp_tunnel_proxy_refusals_total", { reason: "tunnel_start_rate" })).toBe(refused.length);
    for (const r of results) r.socket.destroy();
    await proxy.stop();
  }, 90_000);

  test("with the defaults a dozen new hostnames at once all start", async () => {
    const suffix = `${unique()}.dozen.test`;
    const proxy = await startProxy(["--allow-sni-suffix", suffix]);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => open(proxy.port, hello(`h${i}.${suffix}`))));
    expect(results.filter((r) => !r.echoed)).toEqual([]);
    for (const r of results) r.socket.destroy();
    await proxy.stop();
  });

  test("--evict-min-idle: at the cap a recently used tunnel is kept and the newcomer refused; without it the LRU goes", async () => {
    for (const floor of ["60s", "0"]) {
      const suffix = `${unique()}.evict.test`;
      const proxy = await startProxy(["--allow-sni-suffix", suffix, "--max-tunnels", "2", "--evict-min-idle", floor]);
      for (const name of ["a", "b"]) {
        const used = await open(proxy.port, hello(`${name}.${suffix}`));
        used.socket.destroy();
        await proxy.waitFor((l) => l.msg === "connection" && l.sni === `${name}.${suffix}`);
      }
      const newcomer = await open(proxy.port, hello(`c.${suffix}`));
      if (floor === "60s") {
        expect([...newcomer.received]).toEqual(ALERT_INTERNAL_ERROR);
        expect(proxy.lines.filter((l) => l.msg === "tunnel evicted")).toEqual([]);
      } else {
        expect(newcomer.echoed).toBe(true);
        expect(proxy.lines.filter((l) => l.msg === "tunnel evicted").map((l) => l.tunnel)).toEqual([`cft-a.${suffix}`]);
      }
      newcomer.socket.destroy();
      await proxy.stop();
    }
  });
});

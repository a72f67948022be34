// Volume through the real cloudflared: 64 MiB each way byte-exact in one session, and 32 concurrent sessions over 4
// hostnames (one cloudflared each, one WebSocket per session).
import { describe, expect, test } from "bun:test";
import { eventually, metric, scrape } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { exchange, exchangeServer } from "./backends.ts";
import { bridgedChain, realSkipped } from "./harness.ts";

const MIB = 1024 * 1024;
const HOSTS = ["bulk-1", "bulk-2", "bulk-3", "bulk-4"].map((label) => `${label}.demo.test`);

describe.skipIf(realSkipped())("transfers through the real cloudflared", () => {
  const real = bridgedChain(exchangeServer, HOSTS.map((host) => `cft-${host}`), ["--log-level", "info", "--metrics-listen", "127.0.0.1:0"]);

  test("64 MiB each way in one session arrive byte-exact", async () => {
    const total = 64 * MIB;
    const result = await within(50_000, exchange(real.proxy.port, HOSTS[0] as string, total), "the 64 MiB exchange");
    console.log(`real chain: 64 MiB each way in ${result.ms.toFixed(0)} ms (${((2 * total) / MIB / (result.ms / 1000)).toFixed(1)} MiB/s both ways)`);
    expect(result.backendGot).toBe(result.sentHash);
    expect(result.receivedHash).toBe(result.expectedHash);
    const line = await real.proxy.waitFor((l) => l.msg === "connection" && l.sni === HOSTS[0]);
    expect(Number(line.bytes_in)).toBeGreaterThan(total);
    expect(Number(line.bytes_out)).toBeGreaterThan(total);
  });

  test("32 concurrent sessions over 4 hostnames: each byte-exact, one tunnel per hostname, one WebSocket per session", async () => {
    const before = real.chain.edge.requests.length;
    const startsBefore = real.proxy.lines.filter((l) => l.msg === "tunnel starting").length;
    const sessions = Array.from({ length: 32 }, (_, i) => exchange(real.proxy.port, HOSTS[i % HOSTS.length] as string, 2 * MIB));
    const started = performance.now();
    const results = await within(50_000, Promise.all(sessions), "32 concurrent exchanges");
    console.log(`real chain: 32 sessions x 2 MiB each way in ${(performance.now() - started).toFixed(0)} ms`);
    for (const result of results) {
      expect(result.backendGot).toBe(result.sentHash);
      expect(result.receivedHash).toBe(result.expectedHash);
    }
    const requests = real.chain.edge.requests.slice(before);
    for (const host of HOSTS) expect(requests.filter((r) => r.host === `cft-${host}` && r.upgrade)).toHaveLength(8);
    // The first hostname's tunnel was started by the test before; the other three start now, once each.
    const starts = real.proxy.lines.filter((l) => l.msg === "tunnel starting").slice(startsBefore).map((l) => l.tunnel);
    expect(starts.sort()).toEqual(HOSTS.slice(1).map((h) => `cft-${h}`));
    // Each summary is written once the proxy has seen its connection close, a moment after the client's end.
    const proxied = () => scrape(real.proxy.adminPort as number).then((s) => metric(s, "tcp_tunnel_proxy_connections_total", { outcome: "proxied" }));
    expect(await eventually(proxied, (n) => n >= 33)).toBe(33);
  });
});

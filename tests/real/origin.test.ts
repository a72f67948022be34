// An origin the real cloudflared cannot reach (its hostname resolves nowhere): cloudflared logs `failed to connect to
// origin` and resets the local connection before the backend has sent a byte. The client, waiting for the server's
// side of its TLS handshake, gets an internal_error alert; the summary says backend_error and why; each such
// connection counts once as an origin failure.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ProxyProcess } from "../helpers/proxy-process.ts";
import { eventually, metric, scrape } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { ALERT_INTERNAL_ERROR } from "../helpers/wire.ts";
import { realChain, realSkipped, type RealChain } from "./harness.ts";

/** Not in the namespace's /etc/hosts, and .test is reserved: no resolver has it. */
const SNI = "gone.demo.test";
const ORIGIN_FAILURES = "tcp_tunnel_proxy_tunnel_origin_failures_total";

describe.skipIf(realSkipped())("an origin the real cloudflared cannot reach", () => {
  let chain: RealChain;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    chain = realChain();
    proxy = await chain.proxy(["--metrics-listen", "127.0.0.1:0"]);
  });
  afterAll(async () => {
    await proxy?.stop();
    chain?.close();
  });

  test("each client gets internal_error then close; backend_error naming the origin; counted once per connection", async () => {
    for (const n of [1, 2]) {
      const socket = await rawConnect(proxy.port);
      const reply = readUntilClose(socket);
      socket.write(records(clientHello({ names: [SNI] })));
      expect([...(await within(15_000, reply, `client ${n}'s close`))]).toEqual(ALERT_INTERNAL_ERROR);
      const summaries = () => proxy.lines.filter((l) => l.msg === "connection" && l.sni === SNI);
      await eventually(() => summaries().length, (count) => count >= n);
      const summary = summaries()[n - 1];
      expect(summary?.outcome).toBe("backend_error");
      expect(String(summary?.reason)).toMatch(/cloudflared/);
      expect(String(summary?.reason)).toMatch(/origin/);
      const samples = await eventually(() => scrape(proxy.adminPort as number), (s) => metric(s, ORIGIN_FAILURES) >= n);
      expect(metric(samples, ORIGIN_FAILURES)).toBe(n);
    }
    const told = proxy.lines.filter((l) => l.msg === "cloudflared" && String(l.line).includes("failed to connect to origin"));
    expect(told).toHaveLength(2);
    expect(String(told[0]?.line)).toContain("no such host");
    expect(chain.edge.requests).toHaveLength(0);
    // The tunnel itself is fine: one process served both attempts.
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting")).toHaveLength(1);
  });
});

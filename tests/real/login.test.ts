// The login prompt for real: without a service token the edge answers as Access does (a redirect to its login path),
// the real cloudflared starts its browser login, and the proxy fails the tunnel fast, says a service token is
// needed, and refuses the hostname during the cooldown without starting cloudflared again.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ProxyProcess } from "../helpers/proxy-process.ts";
import { metric, scrape, tunnels } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { ALERT_INTERNAL_ERROR } from "../helpers/wire.ts";
import { ACCESS_AUD, loginPath } from "./edge.ts";
import { realChain, realSkipped, type RealChain } from "./harness.ts";

const SNI = "app.demo.test";
const TUNNEL = `cft-${SNI}`;

async function attempt(port: number): Promise<{ bytes: Buffer; ms: number }> {
  const started = performance.now();
  const socket = await rawConnect(port);
  const closed = readUntilClose(socket);
  socket.write(records(clientHello({ names: [SNI] })));
  const bytes = await within(20_000, closed, "the client's close");
  return { bytes, ms: performance.now() - started };
}

describe.skipIf(realSkipped())("Access login prompt from the real cloudflared", () => {
  let chain: RealChain;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    chain = realChain();
    chain.serve(TUNNEL, { kind: "login" });
    // A cooldown far longer than the test: the second attempt must meet it however slow the machine.
    proxy = await chain.proxy(["--restart-backoff", "60s", "--metrics-listen", "127.0.0.1:0"], { TUNNEL_SERVICE_TOKEN_ID: "", TUNNEL_SERVICE_TOKEN_SECRET: "" });
  });
  afterAll(async () => {
    await proxy?.stop();
    chain?.close();
  });

  test("the tunnel fails fast, the reason names the service token, and the cooldown refuses without a spawn", async () => {
    const first = await attempt(proxy.port);
    console.log(`real chain: login prompt to closed client in ${first.ms.toFixed(0)} ms`);
    const failure = await proxy.waitFor((l) => l.msg === "tunnel needs login");
    expect(failure).toMatchObject({ level: "error", tunnel: TUNNEL });
    expect(String(failure.reason)).toContain("TUNNEL_SERVICE_TOKEN_ID");
    expect(proxy.lines.some((l) => l.msg === "cloudflared" && String(l.line).startsWith("A browser window should have opened"))).toBe(true);
    // cloudflared asked as Access expects: the WebSocket dial, then HEAD of the application and of its login path.
    const asked = chain.edge.requests.map((r) => `${r.method} ${r.path.split("?")[0]}`);
    expect(asked).toEqual(["GET /", "HEAD /", `HEAD ${loginPath(TUNNEL)}`]);
    expect(chain.edge.requests[2]?.path).toContain(`kid=${ACCESS_AUD}`);
    expect((await tunnels(proxy.adminPort as number)).find((t) => t.hostname === TUNNEL)).toMatchObject({ state: "failed" });

    const second = await attempt(proxy.port);
    expect([...second.bytes]).toEqual(ALERT_INTERNAL_ERROR);
    const refused = await proxy.waitFor((l) => l.msg === "connection" && l.sni === SNI && String(l.reason).includes("cooldown"));
    expect(refused.outcome).toBe("tunnel_failed");
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting")).toHaveLength(1);
    expect(chain.edge.requests).toHaveLength(3);
    expect(metric(await scrape(proxy.adminPort as number), "tcp_tunnel_proxy_tunnel_starts_total", { result: "ok" })).toBe(1);
  });
});

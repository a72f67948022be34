// An origin the real cloudflared cannot reach — its hostname resolves nowhere, or the edge refuses the WebSocket (as
// Access does a token it denies): cloudflared logs `failed to connect to origin` and drops the local connection
// before the backend has sent a byte. The client, waiting for the server's side of its TLS handshake, gets an
// internal_error alert; the summary says backend_error and why; each such connection counts once as an origin failure.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ProxyProcess } from "../helpers/proxy-process.ts";
import { eventually, metric, scrape } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { ALERT_INTERNAL_ERROR } from "../helpers/wire.ts";
import { realChain, realSkipped, type RealChain } from "./harness.ts";

/** Not in the namespace's /etc/hosts, and .test is reserved: no resolver has it. */
const GONE = "gone.demo.test";
const DENIED = "denied.demo.test";
const ORIGIN_FAILURES = "tcp_tunnel_proxy_tunnel_origin_failures_total";

describe.skipIf(realSkipped())("an origin the real cloudflared cannot reach", () => {
  let chain: RealChain;
  let proxy: ProxyProcess;
  let failures = 0;

  beforeAll(async () => {
    chain = realChain();
    chain.serve(`cft-${DENIED}`, { kind: "refuse" });
    proxy = await chain.proxy(["--metrics-listen", "127.0.0.1:0"]);
  });
  afterAll(async () => {
    await proxy?.stop();
    chain?.close();
  });

  /** One client for `sni`: the alert and the close, the summary, the counter one higher; the line cloudflared wrote. */
  async function failsAsOrigin(sni: string): Promise<string> {
    const told = () => proxy.lines.filter((l) => l.msg === "cloudflared" && l.tunnel === `cft-${sni}` && String(l.line).includes("failed to connect to origin"));
    const toldBefore = told().length;
    const summaries = () => proxy.lines.filter((l) => l.msg === "connection" && l.sni === sni);
    const before = summaries().length;
    const socket = await rawConnect(proxy.port);
    const reply = readUntilClose(socket);
    socket.write(records(clientHello({ names: [sni] })));
    expect([...(await within(15_000, reply, `${sni}: the client's close`))]).toEqual(ALERT_INTERNAL_ERROR);
    await eventually(() => summaries().length, (count) => count > before);
    const summary = summaries()[before];
    expect(summary?.outcome).toBe("backend_error");
    expect(String(summary?.reason)).toMatch(/cloudflared/);
    expect(String(summary?.reason)).toMatch(/origin/);
    failures++;
    const samples = await eventually(() => scrape(proxy.adminPort as number), (s) => metric(s, ORIGIN_FAILURES) >= failures);
    expect(metric(samples, ORIGIN_FAILURES)).toBe(failures);
    await eventually(() => told().length, (count) => count > toldBefore);
    expect(told()).toHaveLength(toldBefore + 1);
    return String(told()[toldBefore]?.line);
  }

  test("an unresolvable hostname, twice: each client gets internal_error, each counts once; one tunnel serves both", async () => {
    expect(await failsAsOrigin(GONE)).toContain("no such host");
    expect(await failsAsOrigin(GONE)).toContain("no such host");
    expect(chain.edge.requests.filter((r) => r.host === `cft-${GONE}`)).toHaveLength(0);
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting" && l.tunnel === `cft-${GONE}`)).toHaveLength(1);
  });

  test("the edge refusing the WebSocket (403): the same for the client, the summary and the counter", async () => {
    expect(await failsAsOrigin(DENIED)).toContain("bad handshake");
    expect(chain.edge.requests.filter((r) => r.host === `cft-${DENIED}`).map((r) => r.method)).toEqual(["GET"]);
  });
});

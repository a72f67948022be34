// The real cloudflared's life under the proxy: stopped when idle, stopped by the proxy's SIGTERM after a drain (the
// proxy exits 0 and no cloudflared remains), and restarted after a kill -9 with new sessions working. The real one
// dies at once on SIGTERM; a tunnel process that takes 2.5 s (the fake's FAKE_CF_TERM_DELAY_MS) is covered too.
import { afterEach, describe, expect, test } from "bun:test";
import { FAKE_CLOUDFLARED, startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { echoRoundTrip, rawConnect, tlsClient } from "../helpers/clients.ts";
import { clientHello, records } from "../helpers/builders.ts";
import { tlsEchoServer } from "../helpers/servers.ts";
import { eventually, isAlive, metric, scrape } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { realChain, realSkipped, type RealChain } from "./harness.ts";

const text = (s: string) => new TextEncoder().encode(s);
const pids = (proxy: ProxyProcess) => proxy.lines.filter((l) => l.msg === "tunnel starting").map((l) => Number(l.pid));

describe.skipIf(realSkipped())("the real cloudflared's lifecycle under the proxy", () => {
  let chain: RealChain | undefined;
  let backend: Awaited<ReturnType<typeof tlsEchoServer>> | undefined;
  afterEach(() => {
    chain?.close();
    backend?.close();
  });

  async function setup(hosts: string[], args: string[]): Promise<ProxyProcess> {
    backend = await tlsEchoServer();
    chain = realChain();
    for (const host of hosts) chain.serve(`cft-${host}`, { kind: "bridge", port: backend.port });
    return chain.proxy(args);
  }

  test("an idle tunnel's cloudflared is stopped and gone; the proxy keeps running", async () => {
    const proxy = await setup(["idle.demo.test"], ["--idle-timeout", "300ms"]);
    const socket = await tlsClient(proxy.port, "idle.demo.test");
    expect((await echoRoundTrip(socket, text("once"))).toString()).toBe("once");
    socket.destroy();
    const stopped = await proxy.waitFor((l) => l.msg === "tunnel stopped" && l.tunnel === "cft-idle.demo.test");
    expect(proxy.lines.find((l) => l.msg === "tunnel stopping")?.reason).toBe("idle");
    await eventually(() => isAlive(Number(stopped.pid)), (alive) => !alive);
    expect(proxy.proc.exitCode).toBeNull();
    expect(await proxy.stop()).toBe(0);
  });

  test("SIGTERM with a session open: it keeps working through the drain, then the proxy exits 0 and no cloudflared remains", async () => {
    const hosts = ["drain-a.demo.test", "drain-b.demo.test"];
    const proxy = await setup(hosts, ["--drain-timeout", "20s"]);
    const held = await tlsClient(proxy.port, hosts[0] as string);
    const idle = await tlsClient(proxy.port, hosts[1] as string);
    idle.destroy();
    expect((await echoRoundTrip(held, text("before"))).toString()).toBe("before");
    proxy.proc.kill("SIGTERM");
    await proxy.waitFor((l) => l.msg === "draining");
    expect((await echoRoundTrip(held, text("during the drain"))).toString()).toBe("during the drain");
    const started = performance.now();
    held.end();
    const code = await within(20_000, proxy.proc.exited, "the proxy's exit after the drain");
    console.log(`real chain: last session closed to proxy exit in ${(performance.now() - started).toFixed(0)} ms`);
    expect(code).toBe(0);
    expect(pids(proxy)).toHaveLength(2);
    for (const pid of pids(proxy)) expect(isAlive(pid)).toBe(false);
  });

  test("kill -9 of cloudflared mid-session: the tunnel restarts once and new sessions work", async () => {
    const proxy = await setup(["crash.demo.test"], ["--restart-backoff", "100ms", "--metrics-listen", "127.0.0.1:0"]);
    const session = await tlsClient(proxy.port, "crash.demo.test");
    session.on("error", () => undefined);
    expect((await echoRoundTrip(session, text("alive"))).toString()).toBe("alive");
    const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
    const [first] = pids(proxy);
    process.kill(first as number, "SIGKILL");
    await within(10_000, closed, "the session's close when its cloudflared died");
    await proxy.waitFor((l) => l.msg === "tunnel ready" && Number(l.pid) !== first);
    const samples = await scrape(proxy.adminPort as number);
    expect(metric(samples, "tcp_tunnel_proxy_tunnel_restarts_total")).toBe(1);
    for (const n of [1, 2]) {
      const next = await tlsClient(proxy.port, "crash.demo.test");
      expect((await echoRoundTrip(next, text(`after ${n}`))).toString()).toBe(`after ${n}`);
      next.destroy();
    }
    expect(pids(proxy)).toHaveLength(2);
    expect(await proxy.stop()).toBe(0);
    for (const pid of pids(proxy)) expect(isAlive(pid)).toBe(false);
  });
});

describe("a tunnel process slow to exit on SIGTERM (the fake, FAKE_CF_TERM_DELAY_MS=2500)", () => {
  test("the fake itself dies by the signal, silently, no sooner than the delay", async () => {
    const fake = Bun.spawn([process.execPath, FAKE_CLOUDFLARED, "access", "tcp", "--hostname", "slow-term.demo.test", "--url", "127.0.0.1:0"], {
      stdout: "pipe", stderr: "pipe", env: { ...process.env, FAKE_CF_TERM_DELAY_MS: "2500" },
    });
    const said: string[] = [];
    const reading = (async () => { for await (const chunk of fake.stderr) said.push(new TextDecoder().decode(chunk)); })();
    await eventually(() => said.join(""), (text) => text.includes("Start Websocket listener"));
    const before = said.length;
    const sent = performance.now();
    fake.kill("SIGTERM");
    await within(10_000, fake.exited, "the fake's exit after SIGTERM");
    await reading;
    expect(performance.now() - sent).toBeGreaterThanOrEqual(2500);
    expect({ signal: fake.signalCode, said: said.slice(before) }).toEqual({ signal: "SIGTERM", said: [] });
  });

  test("the proxy's shutdown still exits 0 and leaves no tunnel process", async () => {
    const proxy = await startProxy([], { FAKE_CF_TERM_DELAY_MS: "2500" });
    const socket = await rawConnect(proxy.port);
    socket.write(records(clientHello({ names: ["slow-term.demo.test"] })));
    const ready = await proxy.waitFor((l) => l.msg === "tunnel ready");
    socket.destroy();
    expect(await proxy.stop()).toBe(0);
    expect(proxy.lines.some((l) => l.msg === "tunnel stopped" && l.pid === ready.pid)).toBe(true);
    expect(isAlive(Number(ready.pid))).toBe(false);
  });
});

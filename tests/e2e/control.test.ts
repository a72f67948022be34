import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { proxyCommand, startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { metric, scrape, tunnels } from "../helpers/admin.ts";
import { echoRoundTrip, rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";

const ADMIN = ["--metrics-listen", "127.0.0.1:0"];

function call(proxy: ProxyProcess, method: string, path: string, token?: string): Promise<Response> {
  const headers: Record<string, string> = { connection: "close" };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return fetch(`http://127.0.0.1:${proxy.adminPort}${path}`, { method, headers, keepalive: false });
}

const starts = (proxy: ProxyProcess, tunnel: string) => proxy.lines.filter((l) => l.msg === "tunnel starting" && l.tunnel === tunnel).length;

/** A proxied client of `sni`, kept open once its hello has come back through the echo tunnel. */
async function client(proxy: ProxyProcess, sni: string) {
  const socket = await rawConnect(proxy.port);
  await within(5000, echoRoundTrip(socket, records(clientHello({ names: [sni] }))), `the echo through ${sni}`);
  return socket;
}

describe("tunnel control on the admin server", () => {
  test("POST starts a tunnel and answers once ready; the next client is served without a second start", async () => {
    const proxy = await startProxy(ADMIN);
    const sni = `db-${unique()}.control.test`;
    const started = await call(proxy, "POST", `/tunnels/cft-${sni}`);
    expect(started.status).toBe(200);
    expect(await started.json()).toMatchObject({ hostname: `cft-${sni}`, state: "idle", pinned: false, pid: expect.any(Number) });
    const socket = await client(proxy, sni);
    expect(starts(proxy, `cft-${sni}`)).toBe(1);
    expect((await call(proxy, "GET", `/tunnels/cft-${sni}`)).status).toBe(200);
    socket.destroy();
    expect((await call(proxy, "GET", "/tunnels/cft-nothing.control.test")).status).toBe(404);
    expect((await call(proxy, "POST", "/tunnels/bad_name")).status).toBe(400);
    expect((await call(proxy, "DELETE", "/tunnels/cft-nothing.control.test")).status).toBe(404);
    expect((await call(proxy, "PUT", `/tunnels/cft-${sni}`)).status).toBe(405);
    await proxy.stop();
  });

  test("a start that fails is 503 with the reason", async () => {
    const proxy = await startProxy(ADMIN, { FAKE_CF_FAIL: "exit" });
    const response = await call(proxy, "POST", `/tunnels/cft-x-${unique()}.control.test`);
    expect(response.status).toBe(503);
    expect(String(((await response.json()) as { error: string }).error)).toContain("exited with status 1");
    await proxy.stop();
  });

  test("a pinned tunnel outlives the idle timeout and comes back after kill -9 of its process", async () => {
    const proxy = await startProxy([...ADMIN, "--idle-timeout", "200ms"]);
    const [pinned, loose] = [`cft-p-${unique()}.pin.test`, `cft-l-${unique()}.pin.test`];
    const first = (await (await call(proxy, "POST", `/tunnels/${pinned}?pin=true`)).json()) as { pid: number; pinned: boolean };
    expect(first.pinned).toBe(true);
    expect((await call(proxy, "POST", `/tunnels/${loose}`)).status).toBe(200);
    await within(5000, proxy.waitFor((l) => l.msg === "tunnel stopped" && l.tunnel === loose), "the unpinned tunnel's idle stop");
    expect(proxy.lines.some((l) => l.msg === "tunnel stopping" && l.tunnel === pinned)).toBe(false);
    expect(metric(await scrape(proxy.adminPort as number), "tcp_tunnel_proxy_tunnels_pinned")).toBe(1);
    process.kill(first.pid, "SIGKILL");
    await within(10_000, proxy.waitFor((l) => l.msg === "tunnel ready" && l.tunnel === pinned && l.pid !== first.pid), "the pinned tunnel's restart");
    const [info] = (await tunnels(proxy.adminPort as number)).filter((t) => t.hostname === pinned);
    expect(info).toMatchObject({ pinned: true, state: "idle" });
    expect(info?.pid).not.toBe(first.pid);
    await proxy.stop();
  });

  test("DELETE: 409 while the tunnel carries a connection, ?force=true closes it (tunnel_failed, stopped by admin)", async () => {
    const proxy = await startProxy(ADMIN);
    const sni = `db-${unique()}.delete.test`;
    const socket = await client(proxy, sni);
    const closed = readUntilClose(socket);
    expect((await call(proxy, "DELETE", `/tunnels/cft-${sni}`)).status).toBe(409);
    expect((await call(proxy, "DELETE", `/tunnels/cft-${sni}?force=true`)).status).toBe(200);
    await within(3000, closed, "the forced tunnel's client being closed");
    const line = await proxy.waitFor((l) => l.msg === "connection" && l.sni === sni);
    expect(line).toMatchObject({ outcome: "tunnel_failed", reason: "stopped by admin" });
    expect((await call(proxy, "GET", `/tunnels/cft-${sni}`)).status).toBe(404);
    await proxy.stop();
  });

  test("with --admin-token-file: 401 without or with a wrong token, and nothing is started; the right one works", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "ttp-token-")), "token");
    writeFileSync(file, "  correct-horse-battery\n");
    const proxy = await startProxy([...ADMIN, "--admin-token-file", file]);
    const tunnel = `cft-t-${unique()}.token.test`;
    expect((await call(proxy, "POST", `/tunnels/${tunnel}`)).status).toBe(401);
    expect((await call(proxy, "POST", `/tunnels/${tunnel}`, "wrong")).status).toBe(401);
    expect(starts(proxy, tunnel)).toBe(0);
    expect((await call(proxy, "GET", "/tunnels")).status).toBe(200);
    expect((await call(proxy, "POST", `/tunnels/${tunnel}`, "correct-horse-battery")).status).toBe(200);
    expect((await call(proxy, "DELETE", `/tunnels/${tunnel}`, "correct-horse-batterx")).status).toBe(401);
    expect((await call(proxy, "DELETE", `/tunnels/${tunnel}`)).status).toBe(401);
    expect(await (await call(proxy, "GET", `/tunnels/${tunnel}`)).json()).toMatchObject({ hostname: tunnel, state: "idle" });
    expect(proxy.lines.some((l) => l.msg === "tunnel stopping")).toBe(false);
    expect(proxy.lines.some((l) => JSON.stringify(l).includes("correct-horse"))).toBe(false);
    await proxy.stop();
  });

  test("without a token file, an admin server off loopback refuses POST and DELETE with 403", async () => {
    const proxy = await startProxy(["--metrics-listen", "0.0.0.0:0"]);
    expect((await call(proxy, "POST", `/tunnels/cft-n-${unique()}.open.test`)).status).toBe(403);
    expect((await call(proxy, "DELETE", `/tunnels/cft-n-${unique()}.open.test`)).status).toBe(403);
    expect((await call(proxy, "GET", "/healthz")).status).toBe(200);
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting")).toHaveLength(0);
    await proxy.stop();
  });

  test("--warm pins tunnels at boot: the first client never waits for a cold start", async () => {
    const sni = `w-${unique()}.warm.test`;
    const proxy = await startProxy([...ADMIN, "--warm", `cft-${sni}`]);
    await within(5000, proxy.waitFor((l) => l.msg === "tunnel ready" && l.tunnel === `cft-${sni}`), "the warm tunnel at boot");
    const socket = await client(proxy, sni);
    expect(starts(proxy, `cft-${sni}`)).toBe(1);
    expect((await tunnels(proxy.adminPort as number)).find((t) => t.hostname === `cft-${sni}`)).toMatchObject({ pinned: true });
    socket.destroy();
    await proxy.stop();
  });
});

test("more --warm tunnels than --max-tunnels exits 2", async () => {
  const proxy = Bun.spawn([...proxyCommand(), "--max-tunnels", "1", "--warm", "cft-a.x.test,cft-b.x.test"], { stderr: "pipe" });
  expect(await proxy.exited).toBe(2);
  expect(await new Response(proxy.stderr).text()).toContain("--warm");
});

test("an unusable cloudflared is named in one warning at start", async () => {
  const proxy = await startProxy(["--cloudflared-path", "/nonexistent/cloudflared"]);
  const warning = await proxy.waitFor((l) => l.msg === "cloudflared not usable");
  expect(String(warning.problem)).toContain("CLOUDFLARED_PATH");
  await proxy.stop();
});

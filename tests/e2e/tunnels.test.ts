import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { echoConnection } from "../helpers/swarm.ts";
import { eventually, processesMatching } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { ALERT_INTERNAL_ERROR } from "../helpers/wire.ts";

const stateDir = () => mkdtempSync(join(tmpdir(), "ttp-tun-"));
const pidsOf = (dir: string, tunnel: string) => readFileSync(join(dir, `${tunnel}.pids`), "utf8").trim().split("\n").map(Number);

/** Sends a hello for `sni` and resolves with what the proxy wrote before closing. */
async function refusedWith(proxy: ProxyProcess, sni: string): Promise<{ bytes: Buffer; ms: number }> {
  const started = performance.now();
  const socket = await rawConnect(proxy.port);
  const reply = readUntilClose(socket);
  socket.write(records(clientHello({ names: [sni] })));
  return { bytes: await reply, ms: performance.now() - started };
}

describe("tunnel processes with the fake cloudflared", () => {
  test("argv carries the derived hostname and a port from the range; 20 first connections start one process", async () => {
    const dir = stateDir();
    const proxy = await startProxy(["--port-range", "23400-23409", "--hostname-template", "cft-{first}-{rest}"], { FAKE_CF_STATE_DIR: dir });
    const sni = `db-${unique()}.argv.test`;
    const tunnel = `cft-${sni.replace(".", "-")}`;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => echoConnection(proxy.port, sni, 1000, i)));
    expect(results.every((r) => r.ok)).toBe(true);
    const pids = pidsOf(dir, tunnel);
    expect(pids).toHaveLength(1);
    const argv = readFileSync(`/proc/${pids[0]}/cmdline`, "utf8").split("\0");
    const at = argv.indexOf("access");
    expect(argv.slice(at, at + 6)).toEqual(["access", "tcp", "--hostname", tunnel, "--url", expect.stringMatching(/^127\.0\.0\.1:234\d\d$/)]);
    const port = Number(argv[at + 5]?.split(":")[1]);
    expect(port).toBeGreaterThanOrEqual(23400);
    expect(port).toBeLessThanOrEqual(23409);
    expect(await proxy.stop()).toBe(0);
    expect(processesMatching(tunnel)).toEqual([]);
  });

  test("idle teardown, restart on demand, and an active tunnel is never torn down", async () => {
    const proxy = await startProxy(["--idle-timeout", "300ms"]);
    const busy = `busy-${unique()}.idle.test`;
    const idle = `idle-${unique()}.idle.test`;
    const held = await rawConnect(proxy.port);
    const firstEcho = new Promise((resolve) => held.once("data", resolve));
    held.write(records(clientHello({ names: [busy] })));
    await firstEcho;
    expect((await echoConnection(proxy.port, idle, 100, 1)).ok).toBe(true);
    await proxy.waitFor((l) => l.msg === "tunnel stopped" && l.tunnel === `cft-${idle}`);
    expect((await echoConnection(proxy.port, idle, 100, 2)).ok).toBe(true);
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting" && l.tunnel === `cft-${idle}`)).toHaveLength(2);
    await proxy.waitFor((l) => l.msg === "tunnel stopped" && l.tunnel === `cft-${idle}` && proxy.lines.filter((x) => x.msg === "tunnel stopped").length >= 2);
    expect(proxy.lines.some((l) => l.msg === "tunnel stopping" && l.tunnel === `cft-${busy}`)).toBe(false);
    const echoed = new Promise<Buffer>((resolve) => held.once("data", resolve));
    held.write("still here");
    expect((await echoed).toString()).toBe("still here");
    held.destroy();
    await proxy.stop();
  });

  test("a tunnel that exits at once refuses the client well under the startup timeout", async () => {
    const proxy = await startProxy(["--startup-timeout", "30s"], { FAKE_CF_FAIL: "exit" });
    const { bytes, ms } = await refusedWith(proxy, `x-${unique()}.fail.test`);
    expect([...bytes]).toEqual(ALERT_INTERNAL_ERROR);
    expect(ms).toBeLessThan(10_000);
    const line = await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "tunnel_failed");
    expect(String(line.reason)).toContain("exited with status 1");
    const again = await refusedWith(proxy, String(line.sni));
    expect([...again.bytes]).toEqual(ALERT_INTERNAL_ERROR);
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting")).toHaveLength(1);
    await proxy.stop();
  });

  test("a login prompt fails the tunnel fast and closes its connection", async () => {
    const proxy = await startProxy([], { FAKE_CF_LOGIN: "on-connect" });
    const sni = `x-${unique()}.login.test`;
    const socket = await rawConnect(proxy.port);
    const closed = readUntilClose(socket);
    socket.write(records(clientHello({ names: [sni] })));
    await closed;
    const failure = await proxy.waitFor((l) => l.msg === "tunnel needs login");
    expect(failure.level).toBe("error");
    expect(await proxy.waitFor((l) => l.msg === "connection" && l.sni === sni)).toMatchObject({ outcome: "tunnel_failed" });
    const { bytes } = await refusedWith(proxy, sni);
    expect([...bytes]).toEqual(ALERT_INTERNAL_ERROR);
    await proxy.stop();
  });

  test("a missing cloudflared is a clear error and the proxy keeps serving", async () => {
    const proxy = await startProxy(["--cloudflared-path", "/nonexistent/cloudflared", "--on-no-sni", "ok"]);
    await refusedWith(proxy, `x-${unique()}.missing.test`);
    const line = await proxy.waitFor((l) => l.msg === "tunnel start failed");
    expect(String(line.reason)).toContain("/nonexistent/cloudflared not found");
    const socket = await rawConnect(proxy.port);
    const reply = readUntilClose(socket);
    socket.write(records(clientHello({})));
    expect((await reply).toString()).toBe("OK\n");
    await proxy.stop();
  });

  test("an exhausted port pool refuses clearly", async () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 23390, socket: { data() {} } });
    const proxy = await startProxy(["--port-range", "23390-23390"]);
    await refusedWith(proxy, `x-${unique()}.pool.test`);
    const line = await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "tunnel_failed");
    expect(String(line.reason)).toContain("no free port in 23390-23390");
    await proxy.stop();
    holder.stop(true);
  });

  test("--max-tunnels caps running processes, evicting the least recently used idle one", async () => {
    const tag = unique();
    const proxy = await startProxy(["--max-tunnels", "2"]);
    for (const name of ["a", "b", "c", "d"]) {
      expect((await echoConnection(proxy.port, `${name}-${tag}.cap.test`, 100, 1)).ok).toBe(true);
      expect(processesMatching(`-${tag}.cap.test`).length).toBeLessThanOrEqual(2);
    }
    expect(proxy.lines.filter((l) => l.msg === "tunnel evicted").map((l) => l.tunnel)).toEqual([`cft-a-${tag}.cap.test`, `cft-b-${tag}.cap.test`]);
    await proxy.stop();
  });

  test("kill -9 of the proxy leaves no tunnel process behind", async () => {
    const tag = unique();
    const proxy = await startProxy([]);
    await Promise.all(["a", "b", "c"].map((n, i) => echoConnection(proxy.port, `${n}-${tag}.kill.test`, 100, i)));
    expect(processesMatching(`-${tag}.kill.test`)).toHaveLength(3);
    proxy.proc.kill("SIGKILL");
    await proxy.proc.exited;
    await eventually(() => processesMatching(`-${tag}.kill.test`), (pids) => pids.length === 0, 2000);
  });
});

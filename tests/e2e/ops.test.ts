import { describe, expect, test } from "bun:test";
import { startProxy } from "../helpers/proxy-process.ts";
import { echoConnection } from "../helpers/swarm.ts";
import { adminGet, eventually, metric, parseExposition, processesMatching, scrape, tunnels } from "../helpers/admin.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";

const ADMIN = ["--metrics-listen", "127.0.0.1:0"];

describe("admin server", () => {
  test("metrics move with real connections and the exposition parses strictly", async () => {
    const proxy = await startProxy([...ADMIN, "--hello-timeout", "300ms", "--max-tunnels", "1"]);
    const port = proxy.adminPort as number;
    const before = await scrape(port);
    expect(metric(before, "tcp_tunnel_proxy_connections_total", { outcome: "proxied" })).toBe(0);
    const { types } = parseExposition(await (await adminGet(port, "/metrics")).text());
    expect(Object.fromEntries(types)).toMatchObject({
      tcp_tunnel_proxy_connections_total: "counter",
      tcp_tunnel_proxy_active_connections: "gauge",
      tcp_tunnel_proxy_tunnels: "gauge",
      tcp_tunnel_proxy_tunnel_starts_total: "counter",
      tcp_tunnel_proxy_tunnel_restarts_total: "counter",
      tcp_tunnel_proxy_bytes_total: "counter",
      tcp_tunnel_proxy_handshake_seconds: "histogram",
      tcp_tunnel_proxy_tunnel_startup_seconds: "histogram",
    });

    const sni = `a-${unique()}.metrics.test`;
    expect((await echoConnection(proxy.port, sni, 1000, 1)).ok).toBe(true);
    expect((await echoConnection(proxy.port, sni, 1000, 2)).ok).toBe(true);
    const noSni = await rawConnect(proxy.port);
    const refused = readUntilClose(noSni);
    noSni.write(records(clientHello({})));
    await refused;
    await readUntilClose(await rawConnect(proxy.port));
    const held = await rawConnect(proxy.port);
    const heldEcho = new Promise((resolve) => held.once("data", resolve));
    held.write(records(clientHello({ names: [sni] })));
    await heldEcho;
    const capacity = await rawConnect(proxy.port);
    const capacityClosed = readUntilClose(capacity);
    capacity.write(records(clientHello({ names: [`b-${unique()}.metrics.test`] })));
    await capacityClosed;
    await proxy.waitFor(() => proxy.lines.filter((l) => l.msg === "connection").length >= 5);

    const after = await scrape(port);
    expect(metric(after, "tcp_tunnel_proxy_connections_total", { outcome: "proxied" })).toBe(2);
    expect(metric(after, "tcp_tunnel_proxy_connections_total", { outcome: "refused_no_sni" })).toBe(1);
    expect(metric(after, "tcp_tunnel_proxy_connections_total", { outcome: "timeout" })).toBe(1);
    expect(metric(after, "tcp_tunnel_proxy_connections_total", { outcome: "tunnel_failed" })).toBe(1);
    expect(metric(after, "tcp_tunnel_proxy_refusals_total", { reason: "hello_timeout" })).toBe(1);
    expect(metric(after, "tcp_tunnel_proxy_active_connections")).toBe(1);
    expect(metric(after, "tcp_tunnel_proxy_tunnels", { state: "ready" })).toBe(1);
    expect(metric(after, "tcp_tunnel_proxy_tunnel_starts_total", { result: "ok" })).toBe(1);
    expect(metric(after, "tcp_tunnel_proxy_handshake_seconds_count")).toBe(3);
    expect(metric(after, "tcp_tunnel_proxy_handshake_seconds_bucket", { le: "+Inf" })).toBe(3);
    expect(metric(after, "tcp_tunnel_proxy_tunnel_startup_seconds_count")).toBe(1);
    expect(metric(after, "tcp_tunnel_proxy_bytes_total", { direction: "client_to_backend" })).toBeGreaterThan(2000);
    held.destroy();
    await proxy.stop();
  });

  test("/tunnels follows a tunnel through start, idle and stop; /healthz; 404 elsewhere", async () => {
    const proxy = await startProxy([...ADMIN, "--idle-timeout", "300ms"]);
    const port = proxy.adminPort as number;
    expect(await tunnels(port)).toEqual([]);
    const sni = `a-${unique()}.tunnels.test`;
    const held = await rawConnect(proxy.port);
    const echoed = new Promise((resolve) => held.once("data", resolve));
    held.write(records(clientHello({ names: [sni] })));
    await echoed;
    const [ready] = await tunnels(port);
    expect(ready).toMatchObject({ hostname: `cft-${sni}`, state: "ready", connections: 1, restarts: 0, last_error: null });
    expect(ready?.pid).toBeGreaterThan(0);
    expect(new Date(String(ready?.started_at)).getTime()).toBeGreaterThan(0);
    held.end();
    await proxy.waitFor((l) => l.msg === "connection");
    expect((await tunnels(port))[0]).toMatchObject({ state: "idle", connections: 0 });
    await proxy.waitFor((l) => l.msg === "tunnel stopped");
    expect(await tunnels(port)).toEqual([]);
    const health = await adminGet(port, "/healthz");
    expect([health.status, await health.text()]).toEqual([200, "ok\n"]);
    expect((await adminGet(port, "/nope")).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: "POST" })).status).toBe(405);
    await proxy.stop();
  });

  test("every log line is valid JSON with ts, level and msg", async () => {
    const proxy = await startProxy([]);
    await echoConnection(proxy.port, `a-${unique()}.json.test`, 100, 1);
    await proxy.stop();
    expect(proxy.lines.filter((l) => l.level === "raw")).toEqual([]);
    for (const line of proxy.lines) {
      expect(Object.keys(line).slice(0, 3)).toEqual(["ts", "level", "msg"]);
      expect(new Date(String(line.ts)).toISOString()).toBe(String(line.ts));
    }
    const summary = proxy.lines.find((l) => l.msg === "connection");
    expect(Object.keys(summary ?? {})).toEqual(
      expect.arrayContaining(["client", "sni", "tunnel", "port", "bytes_in", "bytes_out", "duration_ms", "outcome"]),
    );
  });
});

describe("graceful drain", () => {
  test("SIGTERM: new connections refused, /healthz 503, the open one finishes, exit 0, no tunnel left", async () => {
    const tag = unique();
    const proxy = await startProxy([...ADMIN, "--drain-timeout", "30s"]);
    const held = await rawConnect(proxy.port);
    const first = new Promise((resolve) => held.once("data", resolve));
    held.write(records(clientHello({ names: [`a-${tag}.drain.test`] })));
    await first;
    proxy.proc.kill("SIGTERM");
    await proxy.waitFor((l) => l.msg === "draining");
    const health = await adminGet(proxy.adminPort as number, "/healthz");
    expect([health.status, await health.text()]).toEqual([503, "draining\n"]);
    await expect(rawConnect(proxy.port)).rejects.toThrow();
    const echoed = new Promise<Buffer>((resolve) => held.once("data", resolve));
    held.write("during drain");
    expect((await echoed).toString()).toBe("during drain");
    expect(proxy.proc.exitCode).toBeNull();
    held.end();
    expect(await proxy.proc.exited).toBe(0);
    expect(processesMatching(`-${tag}.drain.test`)).toEqual([]);
  });

  test("the drain timeout closes what is left; a second signal exits at once", async () => {
    const tag = unique();
    const timed = await startProxy(["--drain-timeout", "300ms"]);
    const held = await rawConnect(timed.port);
    const first = new Promise((resolve) => held.once("data", resolve));
    held.write(records(clientHello({ names: [`a-${tag}.drain.test`] })));
    await first;
    const closed = readUntilClose(held);
    timed.proc.kill("SIGTERM");
    await closed;
    expect(await timed.proc.exited).toBe(0);
    await timed.waitFor((l) => l.msg === "drain timeout: closing the remaining connections");

    const twice = await startProxy(["--drain-timeout", "60s"]);
    const other = await rawConnect(twice.port);
    const echoed = new Promise((resolve) => other.once("data", resolve));
    other.write(records(clientHello({ names: [`b-${tag}.drain.test`] })));
    await echoed;
    twice.proc.kill("SIGINT");
    await twice.waitFor((l) => l.msg === "draining");
    twice.proc.kill("SIGINT");
    expect(await twice.proc.exited).toBe(0);
    await eventually(() => processesMatching(`-${tag}.drain.test`), (pids) => pids.length === 0, 2000);
  });
});

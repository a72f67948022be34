// Failures inside the proxy, through the binary: an edge worker thread that dies is logged with its error and
// restarted, /healthz says so meanwhile and /metrics keeps its counts; a start that fails after a client got in stops
// the tunnel that client started.
import { expect, test } from "bun:test";
import { freePort, portRange, proxyCommand, readLogLines, type LogLine, FAKE_CLOUDFLARED } from "../helpers/proxy-process.ts";
import { startProxy } from "../helpers/proxy-process.ts";
import { adminGet, metric, scrape } from "../helpers/admin.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { echoConnection } from "../helpers/swarm.ts";
import { within } from "../helpers/deadline.ts";
import { rawConnect } from "../helpers/clients.ts";

test("an edge worker that dies is logged with its error, /healthz answers 503 until it is back, and its counts stay", async () => {
  const proxy = await startProxy(["--workers", "2", "--metrics-listen", "127.0.0.1:0", "--log-level", "info"], { TTP_TEST_CRASH_WORKER_MS: "1500" });
  const admin = proxy.adminPort as number;
  const sni = `w-${unique()}.resilience.test`;
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => echoConnection(proxy.port, sni, 100, i)));
  expect(results.every((r) => r.ok)).toBe(true);
  await proxy.waitFor(() => proxy.lines.filter((l) => l.msg === "connection").length >= 40);
  const before = metric(await scrape(admin), "tcp_tunnel_proxy_connections_total", { outcome: "proxied" });
  expect(before).toBe(40);
  const failed = await proxy.waitFor((l) => l.msg === "bug: edge worker failed");
  expect(String(failed.error)).toContain("fault injected for a test");
  const statuses: number[] = [];
  const restarted = proxy.waitFor((l) => l.msg === "edge worker restarted", 10_000);
  let back = false;
  void restarted.then(() => (back = true));
  while (!back) {
    statuses.push((await adminGet(admin, "/healthz")).status);
    await Bun.sleep(5);
  }
  expect(statuses).toContain(503);
  expect((await adminGet(admin, "/healthz")).status).toBe(200);
  const samples = await scrape(admin);
  expect(metric(samples, "tcp_tunnel_proxy_connections_total", { outcome: "proxied" })).toBe(40);
  expect(metric(samples, "tcp_tunnel_proxy_edges_up")).toBe(2);
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => echoConnection(proxy.port, sni, 100, 100 + i)));
  expect(after.every((r) => r.ok)).toBe(true);
  expect(await proxy.stop()).toBe(0);
}, 30_000);

test("a start that fails after a client got in stops the tunnel that client started before exiting 1", async () => {
  const listen = freePort();
  const held = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const sni = `early-${unique()}.resilience.test`;
  // Workers take a moment to start, and the first edge accepts meanwhile: a client gets in before the admin bind fails.
  const proc = Bun.spawn([...proxyCommand(), "--listen", `127.0.0.1:${listen}`, "--workers", "4", "--metrics-listen", `127.0.0.1:${held.port}`,
    "--port-range", portRange(), "--log-format", "json", "--cloudflared-path", FAKE_CLOUDFLARED], { stderr: "pipe", env: { ...process.env, FAKE_CF_START_DELAY_MS: "300" } });
  const lines: LogLine[] = [];
  const logged = readLogLines(proc.stderr, (line) => lines.push(line));
  let client = null;
  for (let tries = 0; client === null && tries < 2000 && proc.exitCode === null; tries++) {
    client = await rawConnect(listen).catch(() => null);
    if (client === null) await Bun.sleep(1);
  }
  client?.write(records(clientHello({ names: [sni] })));
  expect(await within(20_000, proc.exited, "the exit")).toBe(1);
  await logged;
  held.stop(true);
  client?.destroy();
  expect(lines.find((l) => l.msg === "cannot listen")).toMatchObject({ listen: `127.0.0.1:${held.port}` });
  const started = lines.find((l) => l.msg === "tunnel starting");
  if (started === undefined) throw new Error(`the client did not get in before the failure; log: ${JSON.stringify(lines)}`);
  expect(lines.some((l) => l.msg === "tunnel stopping" && l.reason === "shutdown" && l.tunnel === `cft-${sni}`)).toBe(true);
}, 30_000);

// `bun run bench [--quick]`: direct vs our binary vs HAProxy, to the same backend behind the fake cloudflared, in one run.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { clientHello, records } from "../tests/helpers/builders.ts";
import { rssBytes } from "../tests/helpers/admin.ts";
import { bulk, connectToFirstByte, connectionsPerSecond, openIdle, percentile, roundTrips, touch } from "./bench/load.ts";
import { HOSTS, slowSink, startHaproxy, startOurs } from "./bench/routes.ts";
import { table, verdicts, type RouteName, type Row, type Target } from "./bench/report.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, "no-build": { type: "boolean", default: false } } });
const quick = values.quick === true;
const MiB = 1024 * 1024;
const plan = quick
  ? { bulk: 1024 * MiB, connects: 2000, rtts: 2000, cpsMs: 3000, idle: 5000, colds: 5, slow: 16 * MiB }
  : { bulk: 4096 * MiB, connects: 5000, rtts: 10000, cpsMs: 10000, idle: 5000, colds: 20, slow: 1024 * MiB };
const SLOW_RATE = 4 * 1000 * 1000;
const IDLE_SETTLE_MS = 3000;

if (!values["no-build"]) {
  const build = Bun.spawnSync([process.execPath, "run", "build"], { stdout: "ignore", stderr: "inherit" });
  if (build.exitCode !== 0) process.exit(1);
}
process.env.TTP_BINARY ??= `${import.meta.dir}/../tcp-tunnel-proxy`;

const log = (text: string) => console.error(`bench: ${text}`);
const hello = (sni: string) => records(clientHello({ names: [sni], alpn: ["postgresql"] }));
const slow = slowSink(SLOW_RATE);
const routes = await startOurs(slow.port, (port, sni) => touch(port, hello(sni)));
const haproxy = await startHaproxy(routes.tunnelPorts);
if (haproxy === null) log("HAProxy not installed (apt-get install haproxy): its column is skipped");
const ourPort = routes.ours.port;
const portsFor = (route: RouteName, tunnel: keyof typeof HOSTS): number | null =>
  route === "direct" ? routes.tunnelPorts[tunnel] : route === "ours" ? ourPort : haproxy?.port ?? null;
const ROUTES: RouteName[] = ["direct", "ours", "haproxy"];

async function each(measure: (port: number, route: RouteName) => Promise<number>, tunnel: keyof typeof HOSTS): Promise<Partial<Record<RouteName, number>>> {
  const out: Partial<Record<RouteName, number>> = {};
  for (const route of ROUTES) {
    const port = portsFor(route, tunnel);
    if (port !== null) out[route] = await measure(port, route);
  }
  return out;
}

const rows: Row[] = [];
// Memory first, on a fresh process: later phases leave freed memory that new connections would reuse unseen.
log(`idle memory: ${plan.idle} open proxied connections`);
const idleRss: Partial<Record<RouteName, number>> = {};
const idlePerConn: Partial<Record<RouteName, number>> = {};
for (const [route, pid, port] of [["ours", routes.ours.proc.pid, ourPort], ["haproxy", haproxy?.pid, haproxy?.port]] as const) {
  if (pid === undefined || port === undefined) continue;
  Bun.gc(true);
  const before = rssBytes(pid);
  const sockets = await openIdle(port, hello(HOSTS.echo), plan.idle);
  // Let a garbage collector settle (the handshakes leave garbage behind); HAProxy has none, so it is unaffected.
  await Bun.sleep(IDLE_SETTLE_MS);
  const after = rssBytes(pid);
  idleRss[route] = before / MiB;
  idlePerConn[route] = (after - before) / plan.idle / 1024;
  for (const socket of sockets) socket.end();
}
rows.push({ metric: "process RSS before idle connections", unit: "MiB", better: "lower", ...idleRss });
rows.push({ metric: `RSS per idle connection (${plan.idle} open)`, unit: "KiB", better: "lower", ...idlePerConn });

log(`slow backend: ${plan.slow / MiB} MiB at ${SLOW_RATE / 1e6} MB/s per route`);
const slowGrowth: Partial<Record<RouteName, number>> = {};
for (const [route, pid, port] of [["ours", routes.ours.proc.pid, ourPort], ["haproxy", haproxy?.pid, haproxy?.port]] as const) {
  if (pid === undefined || port === undefined) continue;
  const before = rssBytes(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
  await bulk(port, hello(HOSTS.slow), plan.slow);
  clearInterval(sampler);
  slowGrowth[route] = (peak - before) / MiB;
}
rows.push({ metric: "RSS growth, client pushing to a 4 MB/s backend", unit: "MiB", better: "lower", ...slowGrowth });

log(`bulk: ${plan.bulk / MiB} MiB per route`);
rows.push({ metric: "bulk throughput, one stream", unit: "MB/s", better: "higher", ...(await each((port) => bulk(port, hello(HOSTS.sink), plan.bulk), "sink")) });

log(`connect + ClientHello + first echoed byte: ${plan.connects} sequential connections per route`);
const connectSamples: Partial<Record<RouteName, number[]>> = {};
await each(async (port, route) => {
  const samples: number[] = [];
  for (let i = 0; i < plan.connects; i++) samples.push(await connectToFirstByte(port, hello(HOSTS.echo)));
  connectSamples[route] = samples.sort((a, b) => a - b);
  return 0;
}, "echo");
for (const p of [50, 90, 99]) {
  const row: Row = { metric: `connect to first byte p${p}`, unit: "ms", better: "lower" };
  for (const route of ROUTES) if (connectSamples[route]) (row as Record<string, unknown>)[route] = percentile(connectSamples[route] as number[], p);
  rows.push(row);
}

log(`64-byte round trips: ${plan.rtts} per route`);
const rttSamples: Partial<Record<RouteName, number[]>> = {};
await each(async (port, route) => ((rttSamples[route] = await roundTrips(port, hello(HOSTS.echo), plan.rtts)), 0), "echo");
for (const p of [50, 99]) {
  const row: Row = { metric: `64 B round trip p${p}`, unit: "ms", better: "lower" };
  for (const route of ROUTES) if (rttSamples[route]) (row as Record<string, unknown>)[route] = percentile(rttSamples[route] as number[], p);
  rows.push(row);
}

log(`connections per second: 32 concurrent clients for ${plan.cpsMs} ms per route`);
rows.push({ metric: "connections per second (32 clients)", unit: "conn/s", better: "higher",
  ...(await each((port) => connectionsPerSecond(port, hello(HOSTS.echo), 32, plan.cpsMs), "echo")) });

log(`cold start: ${plan.colds} new hostnames`);
const coldOverheads: number[] = [];
for (let i = 0; i < plan.colds; i++) {
  const sni = `cold-${i}-${Date.now()}.${"bench.test"}`;
  const startedAt = Date.now();
  const total = await connectToFirstByte(ourPort, hello(sni));
  const line = await routes.ours.waitFor((l) => l.msg === "tunnel starting" && l.tunnel === `cft-${sni}`).catch(() => null);
  const spawnedAt = line === null ? startedAt : new Date(String(line.ts)).getTime();
  const boundAt = Number(readFileSync(`${routes.stateDir}/cft-${sni}.bound`, "utf8"));
  coldOverheads.push(total - (boundAt - spawnedAt));
}
coldOverheads.sort((a, b) => a - b);
rows.push({ metric: "cold start beyond the tunnel's own bind (p50)", unit: "ms", better: "lower", ours: percentile(coldOverheads, 50) });

const value = (metric: string, route: RouteName) => rows.find((r) => r.metric === metric)?.[route];
const connectOverhead = (route: RouteName) => (connectSamples[route] && connectSamples.direct
  ? percentile(connectSamples[route] as number[], 50) - percentile(connectSamples.direct, 50) : undefined);
const check = (name: string, ours: number | undefined, reference: number | undefined, ok: (o: number, r: number) => boolean, detail: string): Target =>
  ours === undefined || reference === undefined ? { name, met: null, detail: "not measured (HAProxy absent?)" } : { name, met: ok(ours, reference), detail };
const bulkOurs = value("bulk throughput, one stream", "ours");
const bulkHa = value("bulk throughput, one stream", "haproxy");
const rttOurs = value("64 B round trip p50", "ours");
const rttHa = value("64 B round trip p50", "haproxy");
const cpsOurs = value("connections per second (32 clients)", "ours");
const cpsHa = value("connections per second (32 clients)", "haproxy");
const targets: Target[] = [
  check("bulk >= 1.1x HAProxy", bulkOurs, bulkHa, (o, r) => o >= 1.1 * r, `${(bulkOurs ?? 0).toFixed(0)} vs ${(bulkHa ?? 0).toFixed(0)} MB/s`),
  check("connect p50 overhead over direct <= HAProxy's", connectOverhead("ours"), connectOverhead("haproxy"), (o, r) => o <= r,
    `${connectOverhead("ours")?.toFixed(3)} vs ${connectOverhead("haproxy")?.toFixed(3)} ms`),
  check("64 B RTT p50 <= HAProxy's", rttOurs, rttHa, (o, r) => o <= r, `${rttOurs?.toFixed(3)} vs ${rttHa?.toFixed(3)} ms`),
  check("connections/s >= HAProxy's", cpsOurs, cpsHa, (o, r) => o >= r, `${cpsOurs?.toFixed(0)} vs ${cpsHa?.toFixed(0)} conn/s`),
  check("<= 4 KB per idle proxied connection", idlePerConn.ours, 4, (o, r) => o <= r, `${idlePerConn.ours?.toFixed(2)} KiB (idle process RSS ${idleRss.ours?.toFixed(0)} MiB)`),
  check("cold start <= 10 ms beyond the tunnel's readiness", percentile(coldOverheads, 50), 10, (o, r) => o <= r, `p50 ${percentile(coldOverheads, 50).toFixed(1)} ms, max ${coldOverheads.at(-1)?.toFixed(1)} ms`),
  check("slow-backend memory growth < 32 MB", slowGrowth.ours, 32, (o, r) => o < r, `${slowGrowth.ours?.toFixed(1)} MiB for ${plan.slow / MiB} MiB pushed`),
];

const machine = `${cpus().length} cores (${cpus()[0]?.model ?? "unknown CPU"}), shared by the client, the proxies, the fake tunnel and the backend`;
console.log(`\n${quick ? "quick" : "full"} run, ${new Date().toISOString()}, Bun ${Bun.version}; ${machine}\n`);
console.log(table(rows));
console.log(`\n${verdicts(targets)}\n`);
mkdirSync(`${import.meta.dir}/../bench`, { recursive: true });
const file = `${import.meta.dir}/../bench/${new Date().toISOString().replace(/[:.]/g, "-")}${quick ? "-quick" : ""}.json`;
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), quick, machine, bun: Bun.version, plan, rows, targets }, null, 2) + "\n");
console.log(`written ${file}`);
await haproxy?.stop();
await routes.ours.stop();
slow.stop();
process.exit(0);

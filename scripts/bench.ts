// `bun run bench [--quick] [--runs N] [--workers 1,2,4] [--bare 1,2] [--streams 64] [--variant NAME:N:BINARY[:FLAGS]]
// [--go-original PATH] [--real-cloudflared PATH]`: direct vs our binary at each worker count vs HAProxy vs the bare Bun
// forwarder vs the Go original, to one backend process, repeated with fresh processes each run; every ratio is taken
// within a run, then reported as the median and range over the runs. A variant is one more column of ours —
// another build, or runtime flags given as BUN_OPTIONS — to try a change against the current binary in the same runs.
// The load generator, the backend and the tunnel stand-ins are Go programs (bench/peers.ts builds them).
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { DEFAULT_WORKERS } from "../src/config/options.ts";
import { METRICS, ratioOf, ratioTable, spread, valuesOf, valueTable, verdicts, verdictTable, type Metric, type RunResult } from "./bench/report.ts";
import { peersBinary } from "./bench/peers.ts";
import { cpuTimes } from "./bench/processes.ts";
import { GO_ORIGINAL, PHASES, run, type OursSpec, type Phase, type Plan } from "./bench/run.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string", default: "1" },
    workers: { type: "string", default: "1,2,4" },
    bare: { type: "string", default: "1,2" },
    streams: { type: "string", default: "64" },
    window: { type: "string", default: "256" },
    variant: { type: "string", multiple: true, default: [] },
    phases: { type: "string", default: PHASES.join(",") },
    "no-build": { type: "boolean", default: false },
    "go-original": { type: "string" },
    "real-cloudflared": { type: "string" },
  },
});
const list = (text: string) => text.split(",").filter((s) => s.trim() !== "").map((s) => Number(s.trim()));
const quick = values.quick === true;
const runs = Number(values.runs);
const workers = list(String(values.workers));
const bareWorkers = list(String(values.bare));
const streams = Number(values.streams);
const windowKiB = Number(values.window);
const USAGE = "usage: bun run bench [--quick] [--runs N] [--workers 1,2,4] [--bare 1,2] [--streams 64] [--window 256] " +
  `[--variant NAME:N:BINARY[:BUN_OPTIONS]]... [--phases ${PHASES.join(",")}] [--no-build] [--go-original PATH] [--real-cloudflared PATH]`;
const phases = new Set(String(values.phases).split(",").map((p) => p.trim()).filter((p) => p !== "")) as Set<Phase>;
const binary = process.env.TTP_BINARY ?? `${import.meta.dir}/../tcp-tunnel-proxy`;
const variants: OursSpec[] = (values.variant as string[]).map((text) => {
  const [name = "", n = "", path = "", ...flags] = text.split(":");
  return { name, workers: Number(n), binary: path === "" ? binary : path, bunOptions: flags.join(":") };
});
const ours: OursSpec[] = [...workers.map((n) => ({ name: `ours${n}`, workers: n, binary })), ...variants];
const badName = (name: string) => !/^[a-z][a-z0-9-]*$/i.test(name) || ["direct", "haproxy", GO_ORIGINAL].includes(name) || /^bare\d+$/.test(name);
/** The Go program we replace, built by hand (README, Performance): its column when given. */
const goOriginal = values["go-original"] === undefined ? null : String(values["go-original"]);
/** Cloudflare's client, for cold starts through the real thing: the option, else TTP_REAL_CLOUDFLARED, else the shared copy. */
const sharedCloudflared = `${import.meta.dir}/../../shared/cloudflared/cloudflared`;
const realCloudflared = values["real-cloudflared"] !== undefined ? String(values["real-cloudflared"])
  : process.env.TTP_REAL_CLOUDFLARED ?? (existsSync(sharedCloudflared) ? sharedCloudflared : null);
if (!(runs >= 1) || [...ours.map((o) => o.workers), ...bareWorkers, streams].some((n) => !Number.isInteger(n) || n < 1) ||
  ours.some((o) => badName(o.name)) || !(windowKiB >= 0) || new Set(ours.map((o) => o.name)).size !== ours.length || [...phases].some((p) => !PHASES.includes(p))) {
  console.error(USAGE);
  process.exit(2);
}
for (const [option, path] of [["--go-original", goOriginal], ["--real-cloudflared", realCloudflared]] as const) {
  if (path !== null && !existsSync(path)) {
    console.error(`bench: ${option}: no file at ${path}`);
    process.exit(2);
  }
}
const MiB = 1024 * 1024;
const common = { cpsClients: 32, idle: 5000, slow: 16 * MiB, streams, window: windowKiB * 1024, probeIntervalMs: 10 };
const plan: Plan = quick
  ? { ...common, bulk: 1024 * MiB, connects: 2000, rtts: 2000, cpsMs: 3000, colds: 5, loadedWarmupMs: 1000, loadedMs: 5000 }
  : { ...common, bulk: 4096 * MiB, connects: 5000, rtts: 10000, cpsMs: 10000, colds: 20, loadedWarmupMs: 2000, loadedMs: 10000 };

const log = (text: string) => console.error(`bench: ${text}`);

/**
 * This machine's convention: no measuring while the test suite runs (/tmp/tests.lock; 2 cores make such numbers
 * meaningless), and /tmp/bench.lock says a bench is running. Each run also waits until the CPUs are idle.
 */
const TESTS_LOCK = "/tmp/tests.lock";
const BENCH_LOCK = "/tmp/bench.lock";
const QUIET_BUSY = 0.15;
const QUIET_GIVE_UP_MS = 10 * 60_000;

/** Share of CPU time not idle over `ms`. */
async function busyShare(ms: number): Promise<number> {
  const before = cpuTimes();
  await Bun.sleep(ms);
  const after = cpuTimes();
  return 1 - (after.idle - before.idle) / Math.max(1, after.total - before.total);
}

/** Waits for the test suite to finish and the machine to go quiet; returns the busy share it started at. */
async function waitForQuiet(): Promise<number> {
  const began = performance.now();
  for (;;) {
    if (existsSync(TESTS_LOCK)) {
      log(`${TESTS_LOCK} exists: the test suite is running; waiting`);
      await Bun.sleep(30_000);
      continue;
    }
    const busy = await busyShare(2000);
    if (busy < QUIET_BUSY) return busy;
    if (performance.now() - began > QUIET_GIVE_UP_MS) {
      log(`the machine is still ${(busy * 100).toFixed(0)}% busy after ${QUIET_GIVE_UP_MS / 60000} min: measuring anyway`);
      return busy;
    }
    log(`the machine is ${(busy * 100).toFixed(0)}% busy before the run starts; waiting`);
    await Bun.sleep(30_000);
  }
}
writeFileSync(BENCH_LOCK, `${process.pid}\n`);
const unlock = () => rmSync(BENCH_LOCK, { force: true });
process.on("exit", unlock);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

try {
  peersBinary();
} catch (error) {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(1);
}
if (!values["no-build"]) {
  const build = Bun.spawnSync([process.execPath, "run", "build"], { stdout: "ignore", stderr: "inherit" });
  if (build.exitCode !== 0) process.exit(1);
}

const results: RunResult[] = [];
const began = performance.now();
const busyBefore: number[] = [];
/** The share of CPU time the hypervisor gave to other guests during each run: a high one makes that run suspect. */
const stolen: number[] = [];
for (let index = 0; index < runs; index++) {
  busyBefore.push(await waitForQuiet());
  log(`run ${index + 1} of ${runs} (${quick ? "quick" : "full"})`);
  const before = cpuTimes();
  results.push(await run({ plan, phases, ours, bareWorkers, goOriginal, realCloudflared, index, log: (text) => log(`[${index + 1}/${runs}] ${text}`) }));
  const after = cpuTimes();
  stolen.push((after.steal - before.steal) / Math.max(1, after.total - before.total));
}

const haproxyVersion = Bun.which("haproxy") === null ? null : (Bun.spawnSync(["haproxy", "-v"]).stdout.toString().split("\n")[0] ?? null);
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}; ` +
  "shared by the load generator, the proxies, the tunnel stand-ins and the backend (Go programs: scripts/bench/go)";
const routes = ["direct", "haproxy", ...bareWorkers.map((n) => `bare${n}`), ...ours.map((o) => o.name), ...(goOriginal === null ? [] : [GO_ORIGINAL])];
const versionOf = (argv: string[]) => Bun.spawnSync(argv).stdout.toString().split("\n")[0]?.trim() ?? null;
const realVersion = realCloudflared === null ? null : versionOf([realCloudflared, "--version"]);
const all = verdicts(results, ours);
const minutes = ((performance.now() - began) / 60000).toFixed(1);

console.log(`\n${quick ? "quick" : "full"} bench, ${runs} run${runs === 1 ? "" : "s"} (${minutes} min), ${new Date().toISOString()}, Bun ${Bun.version}, ${haproxyVersion ?? "no HAProxy"}`);
console.log(`${machine}; default workers ${DEFAULT_WORKERS}; CPU time stolen by the hypervisor per run: ${stolen.map((x) => `${(x * 100).toFixed(1)}%`).join(", ")}\n`);
console.log(`Medians over the runs (ranges in the JSON); bareN = the bare Bun forwarder with N workers, oursN = our binary with --workers N:`);
for (const v of variants) console.log(`  ${v.name} = ${v.binary} --workers ${v.workers}${v.bunOptions ? ` with BUN_OPTIONS="${v.bunOptions}"` : ""}`);
if (goOriginal !== null) console.log(`  ${GO_ORIGINAL} = the Go original, ${goOriginal}`);
if (realVersion !== null) console.log(`  real cloudflared for the cold start: ${realCloudflared} (${realVersion})`);
console.log();
console.log(valueTable(results, routes));
console.log(`\nOurs against HAProxy (ratio within each run: median, range over runs):\n`);
console.log(ratioTable(results, ours, "haproxy"));
console.log(`\nOurs against direct:\n`);
console.log(ratioTable(results, ours, "direct"));
if (goOriginal !== null) {
  console.log(`\nOurs against the Go original:\n`);
  console.log(ratioTable(results, ours, GO_ORIGINAL));
}
if (bareWorkers.length > 0) {
  console.log(`\nOurs against the bare forwarder with as many workers (what the proxy adds to the runtime's floor):\n`);
  console.log(ratioTable(results, ours.filter((o) => bareWorkers.includes(o.workers)), "bare"));
}
console.log(`\nTargets${runs < 3 ? " (they are judged on the median of three runs: use --runs 3)" : ""}:\n`);
console.log(verdictTable(all, ours));

const summary: Record<string, Record<string, unknown>> = {};
for (const metric of Object.keys(METRICS) as Metric[]) {
  const byRoute: Record<string, unknown> = {};
  for (const route of routes) {
    const s = spread(valuesOf(results, metric, route));
    if (s !== null) byRoute[route] = s;
  }
  for (const o of ours) {
    for (const reference of ["haproxy", "direct", `bare${o.workers}`, GO_ORIGINAL]) {
      const s = ratioOf(results, metric, o.name, reference);
      if (s !== null) byRoute[`${o.name}/${reference}`] = s;
    }
  }
  if (Object.keys(byRoute).length > 0) summary[metric] = { ...METRICS[metric], ...byRoute };
}
mkdirSync(`${import.meta.dir}/../bench`, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const partial = PHASES.some((p) => !phases.has(p)) ? `-${[...phases].join("-")}` : "";
const file = `${import.meta.dir}/../bench/${stamp}-runs${runs}${quick ? "-quick" : ""}${partial}.json`;
const record = { date: new Date().toISOString(), quick, runs, minutes: Number(minutes), machine, bun: Bun.version, haproxy: haproxyVersion,
  defaultWorkers: DEFAULT_WORKERS, ours, bareWorkers, goOriginal, realCloudflared: realVersion, phases: [...phases], plan, busyBefore, stolen,
  summary, verdicts: all, results };
writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
console.log(`\nwritten ${file}`);
process.exit(0);

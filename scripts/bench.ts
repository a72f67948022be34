// `bun run bench [--quick] [--runs N] [--workers 1,2,4] [--bare 1,2] [--streams 64]`: direct vs our binary at each
// worker count vs HAProxy vs the bare Bun forwarder, to one backend process, repeated with fresh processes each run;
// every ratio is taken within a run, then reported as the median and range over the runs (issue 13).
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { DEFAULT_WORKERS } from "../src/config/options.ts";
import { METRICS, ratioOf, ratioTable, spread, valuesOf, valueTable, verdicts, verdictTable, type Metric, type RunResult } from "./bench/report.ts";
import { run, type Plan } from "./bench/run.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string", default: "1" },
    workers: { type: "string", default: "1,2,4" },
    bare: { type: "string", default: "1,2" },
    streams: { type: "string", default: "64" },
    "no-build": { type: "boolean", default: false },
  },
});
const list = (text: string) => text.split(",").filter((s) => s.trim() !== "").map((s) => Number(s.trim()));
const quick = values.quick === true;
const runs = Number(values.runs);
const workers = list(String(values.workers));
const bareWorkers = list(String(values.bare));
const streams = Number(values.streams);
if (!(runs >= 1) || workers.length === 0 || [...workers, ...bareWorkers, streams].some((n) => !Number.isInteger(n) || n < 1)) {
  console.error("usage: bun run bench [--quick] [--runs N] [--workers 1,2,4] [--bare 1,2] [--streams 64] [--no-build]");
  process.exit(2);
}
const MiB = 1024 * 1024;
const common = { cpsClients: 32, idle: 5000, slow: 16 * MiB, streams, probeIntervalMs: 10 };
const plan: Plan = quick
  ? { ...common, bulk: 1024 * MiB, connects: 2000, rtts: 2000, cpsMs: 3000, colds: 5, loadedWarmupMs: 1000, loadedMs: 5000 }
  : { ...common, bulk: 4096 * MiB, connects: 5000, rtts: 10000, cpsMs: 10000, colds: 20, loadedWarmupMs: 2000, loadedMs: 10000 };

const log = (text: string) => console.error(`bench: ${text}`);

/** This machine's convention: no measuring while the test suite runs (2 cores), and say that a bench is running. */
const TESTS_LOCK = "/tmp/tests.lock";
const BENCH_LOCK = "/tmp/bench.lock";
async function waitForQuiet(): Promise<void> {
  while (existsSync(TESTS_LOCK)) {
    log(`${TESTS_LOCK} exists: the test suite is running; waiting`);
    await Bun.sleep(30_000);
  }
}
writeFileSync(BENCH_LOCK, `${process.pid}\n`);
const unlock = () => rmSync(BENCH_LOCK, { force: true });
process.on("exit", unlock);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

if (!values["no-build"]) {
  const build = Bun.spawnSync([process.execPath, "run", "build"], { stdout: "ignore", stderr: "inherit" });
  if (build.exitCode !== 0) process.exit(1);
}
const binary = process.env.TTP_BINARY ?? `${import.meta.dir}/../tcp-tunnel-proxy`;

const results: RunResult[] = [];
const began = performance.now();
for (let index = 0; index < runs; index++) {
  await waitForQuiet();
  log(`run ${index + 1} of ${runs} (${quick ? "quick" : "full"})`);
  results.push(await run({ plan, workers, bareWorkers, binary, index, log: (text) => log(`[${index + 1}/${runs}] ${text}`) }));
}

const haproxyVersion = Bun.which("haproxy") === null ? null : (Bun.spawnSync(["haproxy", "-v"]).stdout.toString().split("\n")[0] ?? null);
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}; ` +
  "shared by the load generator, the proxies, the fake tunnels and the backend";
const routes = ["direct", "haproxy", ...bareWorkers.map((n) => `bare${n}`), ...workers.map((n) => `ours${n}`)];
const all = verdicts(results, workers);
const minutes = ((performance.now() - began) / 60000).toFixed(1);

console.log(`\n${quick ? "quick" : "full"} bench, ${runs} run${runs === 1 ? "" : "s"} (${minutes} min), ${new Date().toISOString()}, Bun ${Bun.version}, ${haproxyVersion ?? "no HAProxy"}`);
console.log(`${machine}; default workers ${DEFAULT_WORKERS}\n`);
console.log(`Medians over the runs (ranges in the JSON); bareN = the bare Bun forwarder with N workers, oursN = our binary with --workers N:\n`);
console.log(valueTable(results, routes));
console.log(`\nOurs against HAProxy (ratio within each run: median, range over runs):\n`);
console.log(ratioTable(results, workers, "haproxy"));
console.log(`\nOurs against direct:\n`);
console.log(ratioTable(results, workers, "direct"));
if (bareWorkers.length > 0) {
  console.log(`\nOurs against the bare forwarder with as many workers (what the proxy adds to the runtime's floor):\n`);
  console.log(ratioTable(results, workers.filter((n) => bareWorkers.includes(n)), "bare"));
}
console.log(`\nTargets of issue 13${runs < 3 ? " (they are judged on the median of three runs: use --runs 3)" : ""}:\n`);
console.log(verdictTable(all, workers));

const summary: Record<string, Record<string, unknown>> = {};
for (const metric of Object.keys(METRICS) as Metric[]) {
  const byRoute: Record<string, unknown> = {};
  for (const route of routes) {
    const s = spread(valuesOf(results, metric, route));
    if (s !== null) byRoute[route] = s;
  }
  for (const n of workers) {
    for (const reference of ["haproxy", "direct", `bare${n}`]) {
      const s = ratioOf(results, metric, `ours${n}`, reference);
      if (s !== null) byRoute[`ours${n}/${reference}`] = s;
    }
  }
  if (Object.keys(byRoute).length > 0) summary[metric] = { ...METRICS[metric], ...byRoute };
}
mkdirSync(`${import.meta.dir}/../bench`, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const file = `${import.meta.dir}/../bench/${stamp}-runs${runs}${quick ? "-quick" : ""}.json`;
const record = { date: new Date().toISOString(), quick, runs, minutes: Number(minutes), machine, bun: Bun.version, haproxy: haproxyVersion,
  defaultWorkers: DEFAULT_WORKERS, workers, bareWorkers, plan, summary, verdicts: all, results };
writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
console.log(`\nwritten ${file}`);
process.exit(0);

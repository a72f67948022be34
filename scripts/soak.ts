// Chaos soak against the compiled proxy: seeded clients of every kind against tunnels that crash, fail,
// start slowly, ask for a login or hang; optionally a SIGTERM at a random moment; then the invariants.
// Usage: bun run soak [--seconds N] [--seed S] [--workers N] [--sigterm yes|no|random]
import { parseArgs } from "node:util";
import { DEFAULT_WORKERS } from "../src/config/options.ts";
import { runSoak } from "../tests/helpers/soak.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "30" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    workers: { type: "string", default: String(DEFAULT_WORKERS) },
    sigterm: { type: "string", default: "random" },
  },
});
const seed = Number(values.seed);
console.log(`soak: seed ${seed} (repeat with --seed ${seed}), ${values.seconds} s, ${values.workers} workers`);
if (!process.env.TTP_BINARY) {
  const build = Bun.spawnSync([process.execPath, "run", "build"], { stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) process.exit(1);
  process.env.TTP_BINARY = `${import.meta.dir}/../tcp-tunnel-proxy`;
}
const sigterm = values.sigterm === "random" ? seed % 2 === 1 : values.sigterm === "yes";
const report = await runSoak({ seconds: Number(values.seconds), seed, workers: Number(values.workers), sigterm });
console.log(JSON.stringify(report, null, 2));
console.log(report.ok ? "soak: OK" : "soak: FAILED");
process.exit(report.ok ? 0 : 1);

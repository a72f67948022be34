// `bun run test`: the whole suite with the default worker count, then the end-to-end tests again with WORKERS=2 so
// every contract is checked with worker threads too. The binary is compiled once for both halves and removed after;
// the run fails if either half fails. Arguments (test files or -t filters) go to both halves.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "ttp-bin-"));
const binary = join(dir, "tcp-tunnel-proxy");

function run(argv: string[], env: Record<string, string>): number {
  process.stdout.write(`\n$ ${Object.entries(env).map(([k, v]) => `${k}=${v} `).join("")}${argv.join(" ")}\n`);
  return Bun.spawnSync(argv, { cwd: root, stdio: ["inherit", "inherit", "inherit"], env: { ...process.env, ...env } }).exitCode ?? 1;
}

/** Runs both halves; how many failed, or null when the binary could not be built. */
function halves(): number | null {
  if (run([process.execPath, "build", "--compile", "src/main.ts", "--outfile", binary], {}) !== 0) return null;
  const args = process.argv.slice(2);
  const env = { TTP_BINARY: binary };
  let failed = 0;
  if (run([process.execPath, "test", "--timeout", "60000", ...args], env) !== 0) failed++;
  if (run([process.execPath, "test", "--timeout", "60000", ...(args.length > 0 ? args : ["tests/e2e"])], { ...env, WORKERS: "2" }) !== 0) failed++;
  return failed;
}

let failed: number | null;
try {
  failed = halves();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (failed === null) process.stdout.write("\nthe binary could not be built\n");
else process.stdout.write(failed === 0 ? "\nboth halves passed\n" : `\n${failed} of the 2 halves failed\n`);
process.exit(failed === 0 ? 0 : 1);

// Compiles the proxy into one self-contained executable, ./tcp-tunnel-proxy, with `bun build --compile`.
import { statSync } from "node:fs";
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const outfile = resolve(root, "tcp-tunnel-proxy");
const result = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", "--sourcemap", resolve(root, "src/main.ts"), "--outfile", outfile], {
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
});
if (result.exitCode !== 0) process.exit(result.exitCode ?? 1);
const megabytes = (statSync(outfile).size / 1024 / 1024).toFixed(1);
console.log(`built ${outfile} (${megabytes} MiB)`);

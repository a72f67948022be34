// Test preload: compiles the proxy once per run so end-to-end tests exercise the single binary operators ship.
// TTP_BINARY=path uses an existing binary; TTP_FROM_SOURCE=1 runs src/main.ts with bun instead.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

if (!process.env.TTP_BINARY && process.env.TTP_FROM_SOURCE !== "1") {
  const outfile = join(mkdtempSync(join(tmpdir(), "ttp-bin-")), "tcp-tunnel-proxy");
  const root = resolve(import.meta.dir, "..");
  const result = Bun.spawnSync([process.execPath, "build", "--compile", resolve(root, "src/main.ts"), "--outfile", outfile], {
    cwd: root,
    stdout: "ignore",
    stderr: "pipe",
  });
  if (result.exitCode !== 0) throw new Error(`building the test binary failed: ${result.stderr.toString()}`);
  process.env.TTP_BINARY = outfile;
}

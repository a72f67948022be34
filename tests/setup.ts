// Test preload: every temporary file of the run goes in one directory removed when the run ends, and the proxy is
// compiled once per run so end-to-end tests exercise the single binary operators ship. TTP_BINARY=path uses an
// existing binary (`bun run test` builds one for both of its halves); TTP_FROM_SOURCE=1 runs src/main.ts with bun.
import { afterAll } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// Readable by everyone: PostgreSQL runs as its own user and keeps its data directory in here.
const run = mkdtempSync(join(tmpdir(), "ttp-run-"));
chmodSync(run, 0o755);
process.env.TMPDIR = run;
// A preload's afterAll runs once, after the last test file (bun test does not run process "exit" handlers).
afterAll(() => rmSync(run, { recursive: true, force: true }));

if (!process.env.TTP_BINARY && process.env.TTP_FROM_SOURCE !== "1") {
  const outfile = join(run, "tcp-tunnel-proxy");
  const root = resolve(import.meta.dir, "..");
  const result = Bun.spawnSync([process.execPath, "build", "--compile", resolve(root, "src/main.ts"), "--outfile", outfile], {
    cwd: root,
    stdout: "ignore",
    stderr: "pipe",
  });
  if (result.exitCode !== 0) throw new Error(`building the test binary failed: ${result.stderr.toString()}`);
  process.env.TTP_BINARY = outfile;
}

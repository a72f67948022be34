// `bun run test` (scripts/test.ts): both halves run, the run fails if either fails, and the binary it compiled for
// them is gone afterwards.
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { within } from "../helpers/deadline.ts";

test("a failure in the WORKERS=2 half fails the run, and the compiled binary is removed", async () => {
  const root = resolve(import.meta.dir, "../..");
  const before = readdirSync(tmpdir()).filter((name) => name.startsWith("ttp-bin-"));
  const { WORKERS: _workers, TTP_BINARY: _binary, ...env } = process.env;
  const proc = Bun.spawn([process.execPath, "run", "scripts/test.ts", "tests/scripts/halves.fixture.test.ts"], {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...env, TTP_RUNNER_FIXTURE: "1" },
  });
  const [code, out, err] = await within(120_000, Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]), "the runner");
  const output = out + err;
  expect(code).toBe(1);
  expect(output).toContain("$ TTP_BINARY=");
  expect(output).toContain("WORKERS=2");
  expect(output).toContain("1 of the 2 halves failed");
  expect(output.match(/\(pass\) passes only in the first half/g)).toHaveLength(1);
  expect(output.match(/\(fail\) passes only in the first half/g)).toHaveLength(1);
  expect(readdirSync(tmpdir()).filter((name) => name.startsWith("ttp-bin-"))).toEqual(before);
}, 150_000);

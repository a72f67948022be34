// A fixture for tests/scripts/test-runner.test.ts, inert unless TTP_RUNNER_FIXTURE is set: it passes with the default
// worker count and fails under WORKERS=2, so the runner's second half fails while its first passes.
import { expect, test } from "bun:test";

test.skipIf(process.env.TTP_RUNNER_FIXTURE !== "1")("passes only in the first half", () => {
  expect(process.env.WORKERS).toBeUndefined();
  expect(process.env.TTP_BINARY).toMatch(/ttp-bin-[^/]+\/tcp-tunnel-proxy$/);
});

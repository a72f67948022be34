import { expect, test } from "bun:test";
import { DEFAULT_WORKERS } from "../../src/config/options.ts";
import { runSoak } from "../helpers/soak.ts";

// Short runs of `bun run soak` (the long ones run in .ci/run): with the default worker count and with two, one ending
// quiet and one with a SIGTERM mid-run.
for (const [workers, sigterm] of [[DEFAULT_WORKERS, false], [2, true]] as const) {
  test(`chaos for 6 s with ${workers} worker(s)${sigterm ? " and a SIGTERM at a random moment" : ""}: every invariant holds`, async () => {
    const report = await runSoak({ seconds: 6, seed: sigterm ? 7 : 8, workers, sigterm });
    expect(report.violations).toEqual([]);
    expect(report.clients).toBeGreaterThan(100);
  }, 40_000);
}

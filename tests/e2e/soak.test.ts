import { expect, test } from "bun:test";
import { DEFAULT_WORKERS } from "../../src/config/options.ts";
import { runSoak } from "../helpers/soak.ts";

// Short runs of `bun run soak` (the long one runs in .ci/run): one that ends quiet, one with a SIGTERM mid-run.
for (const sigterm of [false, true]) {
  test(`chaos for 6 s${sigterm ? " with a SIGTERM at a random moment" : ""}: every invariant holds`, async () => {
    const report = await runSoak({ seconds: 6, seed: sigterm ? 7 : 8, workers: DEFAULT_WORKERS, sigterm });
    expect(report.violations).toEqual([]);
    expect(report.clients).toBeGreaterThan(100);
  }, 40_000);
}

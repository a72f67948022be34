import { expect, test } from "bun:test";
import { sumSnapshots } from "../../src/ops/metric-families.ts";

test("the counters of dead workers add up into one snapshot: counters by label, histograms bucket by bucket", () => {
  const a = { counters: { c: [["x", 1], ["y", 2]] as [string, number][] }, histograms: { h: { counts: [1, 2], sum: 0.5, count: 3 } } };
  const b = { counters: { c: [["y", 3], ["z", 4]] as [string, number][], d: [["", 7]] as [string, number][] }, histograms: { h: { counts: [0, 5], sum: 1, count: 5 } } };
  expect(sumSnapshots(a, b)).toEqual({
    counters: { c: [["x", 1], ["y", 5], ["z", 4]], d: [["", 7]] },
    histograms: { h: { counts: [1, 7], sum: 1.5, count: 8 } },
  });
  expect(sumSnapshots(a, b).histograms.h).not.toBe(a.histograms.h);
});

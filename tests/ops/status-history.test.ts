// OutcomeHistory: the last minute is now's totals minus the newest sample at least a minute old, never negative,
// with a bounded number of samples kept.
import { describe, expect, test } from "bun:test";
import { OutcomeHistory, WINDOW_MS } from "../../src/ops/outcome-history.ts";

const totals = (proxied: number, timeout = 0) => new Map([["proxied", proxied], ["timeout", timeout]]);

describe("OutcomeHistory", () => {
  test("before any sample, and while younger than a window, the last minute is everything since the first sample", () => {
    const history = new OutcomeHistory();
    expect(history.lastWindow(0, totals(3))).toEqual(totals(3));
    history.record(0, totals(0));
    history.record(5000, totals(2));
    expect(history.lastWindow(30_000, totals(7, 1))).toEqual(totals(7, 1));
  });

  test("once older, it subtracts the newest sample taken at least a window before", () => {
    const history = new OutcomeHistory();
    for (let at = 0; at <= 120_000; at += 5000) history.record(at, totals(at / 1000, at / 5000));
    // At 123 s the newest sample at or before 63 s is the one of 60 s: 60 proxied, 12 timeouts.
    expect(history.lastWindow(123_000, totals(130, 30))).toEqual(totals(70, 18));
    expect(history.lastWindow(125_000, totals(130, 30))).toEqual(totals(65, 17));
  });

  test("an outcome the baseline lacks counts in full; a total that fell (an edge thread gone) counts as 0", () => {
    const history = new OutcomeHistory(1000);
    history.record(0, new Map([["proxied", 10]]));
    expect(history.lastWindow(1000, new Map([["proxied", 4], ["timeout", 2]]))).toEqual(new Map([["proxied", 0], ["timeout", 2]]));
  });

  test("keeps only the samples one window needs", () => {
    const history = new OutcomeHistory(WINDOW_MS);
    for (let at = 0; at <= 3_600_000; at += 5000) history.record(at, totals(at));
    const kept = (history as unknown as { samples: unknown[] }).samples.length;
    expect(kept).toBeLessThanOrEqual(WINDOW_MS / 5000 + 1);
    expect(history.lastWindow(3_600_000, totals(3_600_000))).toEqual(totals(WINDOW_MS));
  });
});

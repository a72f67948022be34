import { expect, test } from "bun:test";
import { after, type Scheduler } from "../src/clock.ts";

/** A scheduler that records every delay asked for and fires timers only when the test says so. */
function recorder() {
  const asked: number[] = [];
  const due: (() => void)[] = [];
  const cleared: unknown[] = [];
  const scheduler: Scheduler = {
    set(callback, ms) {
      asked.push(ms);
      due.push(callback);
      return due.length - 1;
    },
    clear: (handle) => void cleared.push(handle),
  };
  return { asked, cleared, scheduler, fireNext: () => due[asked.length - 1]?.() };
}

test("30 days are waited out in steps setTimeout honours (at most 2^31-1 ms each), the callback only after the last", () => {
  const r = recorder();
  let fired = 0;
  after(30 * 24 * 3_600_000, () => fired++, undefined, r.scheduler);
  expect(r.asked).toEqual([2_147_483_647]);
  r.fireNext();
  expect(fired).toBe(0);
  expect(r.asked).toEqual([2_147_483_647, 2_592_000_000 - 2_147_483_647]);
  r.fireNext();
  expect(fired).toBe(1);
});

test("a short delay is one timer; cancel clears the step that is pending", () => {
  const r = recorder();
  after(250, () => undefined, undefined, r.scheduler);
  expect(r.asked).toEqual([250]);
  const long = after(5_000_000_000, () => undefined, undefined, r.scheduler);
  r.fireNext();
  long.cancel();
  expect(r.cleared).toEqual([2]);
});

test("with real timers, a delay over several steps fires once, not early", async () => {
  const started = performance.now();
  const fired = await new Promise<number>((resolve) => after(60, () => resolve(performance.now() - started), 7));
  expect(fired).toBeGreaterThanOrEqual(59);
});

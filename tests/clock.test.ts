import { expect, test } from "bun:test";
import { after } from "../src/clock.ts";

test("a delay longer than one timer step is waited out in steps, not fired early", async () => {
  const started = performance.now();
  const fired = await new Promise<number>((resolve) => after(60, () => resolve(performance.now() - started), 7));
  expect(fired).toBeGreaterThanOrEqual(59);
});

test("cancel stops a stepped timer between steps", async () => {
  let fired = false;
  const timer = after(40, () => (fired = true), 5);
  await Bun.sleep(12);
  timer.cancel();
  await Bun.sleep(60);
  expect(fired).toBe(false);
});

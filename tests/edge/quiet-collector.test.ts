import { expect, test } from "bun:test";
import { QuietCollector } from "../../src/edge/quiet-collector.ts";
import { FakeClock } from "../supervisor/fakes.ts";

test("collects once after a busy spell, only when a whole period passed without an accept or a close", async () => {
  const clock = new FakeClock();
  let collections = 0;
  const collector = new QuietCollector(() => collections++, 1000, clock);
  collector.start();
  await clock.advance(5000);
  expect(collections).toBe(0);
  for (let i = 0; i < 5; i++) {
    collector.note();
    await clock.advance(900);
  }
  expect(collections).toBe(0);
  await clock.advance(2100);
  expect(collections).toBe(1);
  await clock.advance(10_000);
  expect(collections).toBe(1);
  collector.note();
  await clock.advance(3000);
  expect(collections).toBe(2);
  collector.stop();
  collector.note();
  await clock.advance(5000);
  expect(collections).toBe(2);
  expect(clock.pending).toBe(0);
});

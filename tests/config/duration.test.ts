import { describe, expect, test } from "bun:test";
import { formatDuration, parseDuration } from "../../src/config/duration.ts";

describe("parseDuration", () => {
  test.each([
    ["300s", 300_000],
    ["1m30s", 90_000],
    ["250ms", 250],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    ["2h45m", 9_900_000],
    ["1500", 1500],
    ["0", 0],
    ["500us", 1],
    ["0s", 0],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(["", "banana", "10 s", "-5s", "5x", "s", "1m-30s", "1e3", "1.5", " 5s"])("%p is not a duration", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

test("formatDuration picks the largest whole unit", () => {
  expect(formatDuration(300_000)).toBe("5m");
  expect(formatDuration(15_000)).toBe("15s");
  expect(formatDuration(1500)).toBe("1500ms");
});

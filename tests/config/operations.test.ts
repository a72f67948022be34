import { describe, expect, test } from "bun:test";
import { errorOf, load } from "./loading.ts";

describe("--cancel-fanout / CANCEL_FANOUT", () => {
  test("a whole number >= 0; 0 refuses plaintext cancels", () => {
    expect(load(["--cancel-fanout", "0"]).cancelFanout).toBe(0);
    expect(load([], { CANCEL_FANOUT: "12" }).cancelFanout).toBe(12);
    expect(load(["--cancel-fanout", "2"], { CANCEL_FANOUT: "12" }).cancelFanout).toBe(2);
  });

  test.each(["-1", "1.5", "four", " 4"])("%p is refused", (value) => {
    expect(errorOf(["--cancel-fanout", value])).toBe(`invalid --cancel-fanout ${JSON.stringify(value)}: expected a whole number >= 0`);
    expect(errorOf([], { CANCEL_FANOUT: value })).toStartWith(`invalid CANCEL_FANOUT ${JSON.stringify(value)}`);
  });
});

describe("--reuse-port / REUSE_PORT", () => {
  test("the flag takes no value and wins over the variable", () => {
    expect(load(["--reuse-port"]).reusePort).toBe(true);
    expect(load(["--reuse-port"], { REUSE_PORT: "false" }).reusePort).toBe(true);
    expect(load(["--reuse-port", "--workers", "1"]).workers).toBe(1);
  });

  test.each([
    ["true", true],
    ["1", true],
    ["false", false],
    ["0", false],
  ] as const)("REUSE_PORT=%s", (value, expected) => {
    expect(load([], { REUSE_PORT: value }).reusePort).toBe(expected);
  });

  test("anything else is refused", () => {
    expect(errorOf([], { REUSE_PORT: "yes" })).toBe('invalid REUSE_PORT "yes": expected true or false (or 1 or 0)');
    expect(errorOf(["--reuse-port=true"])).toMatch(/^invalid command line: .*reuse-port/);
  });
});

describe("--workers / WORKERS", () => {
  test("a whole number 1-64", () => {
    expect(load(["--workers", "1"]).workers).toBe(1);
    expect(load([], { WORKERS: "64" }).workers).toBe(64);
  });

  test.each(["0", "65", "-1", "2.5", "many"])("%p is refused", (value) => {
    expect(errorOf(["--workers", value])).toBe(`invalid --workers ${JSON.stringify(value)}: expected a whole number 1-64`);
    expect(errorOf([], { WORKERS: value })).toStartWith(`invalid WORKERS ${JSON.stringify(value)}`);
  });
});

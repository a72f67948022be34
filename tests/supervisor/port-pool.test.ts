import { expect, test } from "bun:test";
import { PortPool } from "../../src/supervisor/port-pool.ts";
import { isProxyError } from "../../src/errors.ts";

test("reserves in order, rotating; released ports go to the back", () => {
  const pool = new PortPool(100, 103);
  expect([pool.reserve(), pool.reserve()]).toEqual([100, 101]);
  pool.release(100);
  expect([pool.reserve(), pool.reserve(), pool.reserve()]).toEqual([102, 103, 100]);
  expect(pool.available).toBe(0);
});

test("skips ports other programs hold, keeping them for later", () => {
  const pool = new PortPool(100, 103);
  const busy = new Set([100, 101]);
  expect(pool.reserve((p) => busy.has(p))).toBe(102);
  expect(pool.reserve((p) => busy.has(p))).toBe(103);
  busy.clear();
  expect([pool.reserve(), pool.reserve()]).toEqual([100, 101]);
});

test("exhaustion is a typed error, and the pool recovers on release", () => {
  const pool = new PortPool(100, 101);
  pool.reserve();
  pool.reserve();
  let error: unknown;
  try {
    pool.reserve();
  } catch (caught) {
    error = caught;
  }
  expect(isProxyError(error, "pool_exhausted")).toBe(true);
  pool.release(101);
  expect(pool.reserve()).toBe(101);
});

test("every port busy elsewhere is exhaustion too, and nothing is lost", () => {
  const pool = new PortPool(100, 102);
  expect(() => pool.reserve(() => true)).toThrow(/held by other programs/);
  expect(pool.available).toBe(3);
});

test("releasing a port twice or one never reserved changes nothing", () => {
  const pool = new PortPool(100, 101);
  const port = pool.reserve();
  pool.release(port);
  pool.release(port);
  pool.release(5000);
  expect(pool.available).toBe(2);
  expect(new Set([pool.reserve(), pool.reserve()])).toEqual(new Set([100, 101]));
});

test("reserve and release stay O(1) over a large range", () => {
  const pool = new PortPool(1024, 65535);
  for (let i = 0; i < 100_000; i++) pool.release(pool.reserve());
  expect(pool.available).toBe(65535 - 1024 + 1);
});

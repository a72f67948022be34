import { expect, test } from "bun:test";
import { KeyedBuckets, TokenBucket } from "../src/token-bucket.ts";

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

test("N per second in bursts of N", () => {
  const c = clock();
  const bucket = new TokenBucket(3, c.now);
  expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, true, false]);
  c.advance(333);
  expect(bucket.tryTake()).toBe(false);
  c.advance(1);
  expect(bucket.tryTake()).toBe(true);
  c.advance(60_000);
  expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, true, false]);
});

test("0 is unlimited", () => {
  const bucket = new TokenBucket(0, clock().now);
  for (let i = 0; i < 1000; i++) expect(bucket.tryTake()).toBe(true);
  expect(new KeyedBuckets(0, clock().now).tryTake("a")).toBe(true);
});

test("takeIfAny spends a token without ever refusing", () => {
  const bucket = new TokenBucket(2, clock().now);
  bucket.takeIfAny();
  bucket.takeIfAny();
  bucket.takeIfAny();
  expect(bucket.tryTake()).toBe(false);
});

test("per key: one key's burst leaves another's alone", () => {
  const c = clock();
  const buckets = new KeyedBuckets(2, c.now);
  expect([buckets.tryTake("a"), buckets.tryTake("a"), buckets.tryTake("a")]).toEqual([true, true, false]);
  expect(buckets.tryTake("b")).toBe(true);
  c.advance(500);
  expect(buckets.tryTake("a")).toBe(true);
  expect(buckets.tryTake("a")).toBe(false);
});

test("a sweep forgets refilled buckets first: a key that is limited now stays limited", () => {
  const c = clock();
  const buckets = new KeyedBuckets(1, c.now, 3);
  buckets.tryTake("b");
  buckets.tryTake("c");
  c.advance(2000);
  expect(buckets.tryTake("a")).toBe(true);
  expect(buckets.tryTake("d")).toBe(true);
  expect(buckets.size).toBe(2);
  expect(buckets.tryTake("a")).toBe(false);
});

test("a flood of distinct keys at one instant keeps the map bounded", () => {
  const buckets = new KeyedBuckets(1, clock().now, 100);
  for (let i = 0; i < 10_000; i++) buckets.tryTake(`flood${i}`);
  expect(buckets.size).toBeLessThanOrEqual(100);
});

import { expect, test } from "bun:test";
import { AddressCounts, SharedCounter } from "../../src/edge/limits.ts";

test("the shared total: never over the limit, freed places taken again, a dead edge's share given back", () => {
  const total = new SharedCounter();
  expect(total.tryTake(0, 3)).toBe(true);
  expect(total.tryTake(1, 3)).toBe(true);
  expect(total.tryTake(1, 3)).toBe(true);
  expect(total.tryTake(0, 3)).toBe(false);
  expect(total.value).toBe(3);
  total.give(1);
  expect(total.tryTake(2, 3)).toBe(true);
  total.forget(1);
  expect(total.value).toBe(2);
  expect(total.tryTake(0, 3)).toBe(true);
  expect(total.tryTake(0, 0)).toBe(true);
});

test("the shared total is one memory for every thread that gets its buffer", () => {
  const a = new SharedCounter();
  const b = new SharedCounter(a.buffer);
  expect(a.tryTake(0, 1)).toBe(true);
  expect(b.tryTake(1, 1)).toBe(false);
  a.give(0);
  expect(b.tryTake(1, 1)).toBe(true);
});

test("per-address counts: the limit per address, and a dead edge's connections forgotten", () => {
  const counts = new AddressCounts(2);
  const owner = (edge: number, n: number) => n * 64 + edge;
  expect(counts.admit(owner(1, 1), "a")).toBe(true);
  expect(counts.admit(owner(1, 2), "b")).toBe(true);
  expect(counts.admit(owner(2, 1), "a")).toBe(true);
  expect(counts.admit(owner(2, 2), "a")).toBe(false);
  counts.forgetEdge(1);
  expect(counts.admit(owner(3, 1), "a")).toBe(true);
  expect(counts.admit(owner(3, 2), "b")).toBe(true);
  expect(counts.admit(owner(3, 3), "b")).toBe(true);
  expect(counts.admit(owner(3, 4), "b")).toBe(false);
  counts.release(owner(3, 2));
  counts.release(owner(3, 2));
  expect(counts.admit(owner(3, 5), "b")).toBe(true);
  expect(counts.admit(owner(3, 6), "b")).toBe(false);
  expect(new AddressCounts(0).admit(1, "a")).toBe(true);
});

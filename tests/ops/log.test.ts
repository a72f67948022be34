import { expect, test } from "bun:test";
import { createLogger } from "../../src/ops/log.ts";

const fixed = () => new Date("2026-01-02T03:04:05.678Z");

test("json lines are flat objects with ts, level, msg first", () => {
  const lines: string[] = [];
  const log = createLogger({ format: "json", level: "info", write: (line) => lines.push(line), now: fixed });
  log.info("connection", { client: "1.2.3.4", bytes_in: 10, proxy_src: undefined, note: 'quote " and\nnewline' });
  expect(lines).toHaveLength(1);
  expect(lines[0]).toEndWith("\n");
  const record = JSON.parse(lines[0] as string);
  expect(Object.keys(record)).toEqual(["ts", "level", "msg", "client", "bytes_in", "note"]);
  expect(record).toEqual({ ts: "2026-01-02T03:04:05.678Z", level: "info", msg: "connection", client: "1.2.3.4", bytes_in: 10, note: 'quote " and\nnewline' });
});

test("fields cannot overwrite ts, level or msg", () => {
  const lines: string[] = [];
  const log = createLogger({ format: "json", level: "info", write: (line) => lines.push(line), now: fixed });
  log.warn("real", { msg: "fake", level: "error" });
  expect(JSON.parse(lines[0] as string)).toMatchObject({ msg: "real", level: "warn" });
});

test("plain lines quote values with spaces", () => {
  const lines: string[] = [];
  const log = createLogger({ format: "plain", level: "debug", write: (line) => lines.push(line), now: fixed });
  log.debug("tunnel ready", { tunnel: "cft-a.test", reason: "two words" });
  expect(lines[0]).toBe('2026-01-02T03:04:05.678Z DEBUG tunnel ready tunnel=cft-a.test reason="two words"\n');
});

test("levels below the threshold are dropped", () => {
  const lines: string[] = [];
  const log = createLogger({ format: "json", level: "warn", write: (line) => lines.push(line), now: fixed });
  log.info("hidden");
  log.debug("hidden");
  log.error("boom", { tunnel: "cft-x.test" });
  expect(lines.map((line) => JSON.parse(line))).toEqual([{ ts: "2026-01-02T03:04:05.678Z", level: "error", msg: "boom", tunnel: "cft-x.test" }]);
  expect(log.enabled("warn")).toBe(true);
  expect(log.enabled("info")).toBe(false);
});

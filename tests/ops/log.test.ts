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

test("values from the wire cannot put a control byte or a non-ASCII character into a line", () => {
  const hostile = "evil\u001b[2J\u0007\u007f\u0085\u202eexe.test\r\nINFO forged=1";
  for (const format of ["plain", "json"] as const) {
    const lines: string[] = [];
    const log = createLogger({ format, level: "info", write: (line) => lines.push(line), now: fixed });
    log.info("connection", { sni: hostile, [hostile]: 1 });
    const line = lines[0] as string;
    expect(line.slice(0, -1)).toMatch(/^[\x20-\x7e]*$/);
    expect(line.endsWith("\n")).toBe(true);
    if (format === "json") expect(JSON.parse(line).sni).toBe(hostile);
    else expect(line).toContain('sni="evil\\u001b[2J\\u0007\\u007f\\u0085\\u202eexe.test\\r\\nINFO forged=1"');
  }
});

test("plain values are bare only when they hold nothing but printable ASCII without quotes, equals or backslashes", () => {
  const lines: string[] = [];
  const log = createLogger({ format: "plain", level: "info", write: (line) => lines.push(line), now: fixed });
  log.info("m", { a: "x=y", b: "tab\there", c: "ok-value_1.2:3", d: "back\\slash" });
  expect(lines[0]).toBe('2026-01-02T03:04:05.678Z INFO  m a="x=y" b="tab\\there" c=ok-value_1.2:3 d="back\\\\slash"\n');
});

import { describe, expect, test } from "bun:test";
import { normaliseSni, route, type RouteResult } from "../../src/edge/route.ts";

describe("SNI normalisation and validation", () => {
  test.each([
    ["DB-123.Ratio1.Link", "db-123.ratio1.link"],
    ["db.example.test.", "db.example.test"],
    ["a.b", "a.b"],
  ])("%s → %s", (raw, expected) => {
    expect(normaliseSni(raw)).toBe(expected);
  });

  test.each([
    "--url=x.test",
    "a..b",
    "bad_host.test",
    "-x.test",
    "x-.test",
    "localhost",
    "db.example.test..",
    ".db.test",
    "db test.x",
    "db\0.test",
    "db.tést.x",
    "a".repeat(64) + ".test",
    ("a".repeat(60) + ".").repeat(5) + "test",
    "",
  ])("%p is refused", (raw) => {
    expect(normaliseSni(raw)).toBeUndefined();
  });
});

describe("route", () => {
  test("default, replace-first-dot and custom templates", () => {
    expect(route("db-123.ratio1.link", [], "cft-{sni}")).toEqual({ kind: "ok", sni: "db-123.ratio1.link", hostname: "cft-db-123.ratio1.link" });
    expect(route("DB-123.ratio1.link.", [], "cft-{first}-{rest}")).toEqual({
      kind: "ok",
      sni: "db-123.ratio1.link",
      hostname: "cft-db-123-ratio1.link",
    });
    expect(route("db-123.ratio1.link", [], "{first}.tunnels.{rest}")).toMatchObject({ hostname: "db-123.tunnels.ratio1.link" });
  });

  test("an invalid SNI keeps its raw text", () => {
    expect(route("bad_host.test", [], "cft-{sni}")).toEqual({ kind: "invalid_sni", sni: "bad_host.test" });
  });

  test("a derived hostname that is not valid is refused", () => {
    const long = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(59)].join(".");
    expect(route(long, [], "cft-{sni}")).toEqual({ kind: "invalid_hostname", sni: long });
  });

  test.each([
    ["db.good.test", "ok"],
    ["good.test", "ok"],
    ["xgood.test", "not_allowed"],
    ["good.test.evil.test", "not_allowed"],
  ] as [string, RouteResult["kind"]][])("suffix list: %s → %s", (name, kind) => {
    expect(route(name, ["good.test"], "cft-{sni}").kind).toBe(kind);
  });
});

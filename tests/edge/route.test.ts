import { describe, expect, test } from "bun:test";
import { isAllowed, isValidHostname, isValidTemplate, normaliseSni, normaliseSuffixes, route } from "../../src/edge/route.ts";

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

  test("253 characters is the limit", () => {
    const name = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
    expect(name.length).toBe(253);
    expect(isValidHostname(name)).toBe(true);
    expect(isValidHostname(name + "e")).toBe(false);
  });
});

describe("hostname template", () => {
  test("default, replace-first-dot and custom forms", () => {
    expect(route("db-123.ratio1.link", [], "cft-{sni}")).toEqual({ kind: "ok", sni: "db-123.ratio1.link", hostname: "cft-db-123.ratio1.link" });
    expect(route("db-123.ratio1.link", [], "cft-{first}-{rest}")).toMatchObject({ hostname: "cft-db-123-ratio1.link" });
    expect(route("db-123.ratio1.link", [], "{first}.tunnels.{rest}")).toMatchObject({ hostname: "db-123.tunnels.ratio1.link" });
  });

  test("a derived hostname that is not valid is refused", () => {
    const long = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(59)].join(".");
    expect(route(long, [], "cft-{sni}")).toEqual({ kind: "invalid_hostname", sni: long });
  });

  test("templates are checked", () => {
    expect(isValidTemplate("cft-{sni}")).toBe(true);
    expect(isValidTemplate("cft-{first}-{rest}")).toBe(true);
    expect(isValidTemplate("{sni")).toBe(false);
    expect(isValidTemplate("cft_{sni}")).toBe(false);
    expect(isValidTemplate("{other}.x")).toBe(false);
  });
});

describe("suffix allow list matches on label boundaries", () => {
  const suffixes = normaliseSuffixes([".good.test", "Other.Test"]);
  test.each([
    ["db.good.test", true],
    ["a.b.good.test", true],
    ["good.test", true],
    ["other.test", true],
    ["xgood.test", false],
    ["good.test.evil.test", false],
    ["db.good.test2", false],
  ])("%s → %p", (name, allowed) => {
    expect(isAllowed(name, suffixes)).toBe(allowed);
    expect(route(name, suffixes, "cft-{sni}").kind).toBe(allowed ? "ok" : "not_allowed");
  });

  test("an empty list allows every name", () => {
    expect(isAllowed("anything.test", [])).toBe(true);
  });
});

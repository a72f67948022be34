import { describe, expect, test } from "bun:test";
import { isAllowed, isValidHostname, isValidTemplate, normaliseSuffixes, renderTemplate } from "../../src/protocol/hostname.ts";

describe("DNS hostname validation", () => {
  test.each(["db-123.ratio1.link", "a.b", "x1.y2.z3", "cft-db-1.example.test"])("%p is valid", (name) => {
    expect(isValidHostname(name)).toBe(true);
  });

  test.each([
    "--url=x.test",
    "a..b",
    "bad_host.test",
    "-x.test",
    "x-.test",
    "localhost",
    "DB.example.test",
    "db.example.test.",
    ".db.test",
    "db test.x",
    "db.tést.x",
    "a".repeat(64) + ".test",
    "",
  ])("%p is refused", (name) => {
    expect(isValidHostname(name)).toBe(false);
  });

  test("253 characters is the limit", () => {
    const name = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
    expect(name.length).toBe(253);
    expect(isValidHostname(name)).toBe(true);
    expect(isValidHostname(name + "e")).toBe(false);
  });
});

describe("hostname template", () => {
  test("placeholders", () => {
    expect(renderTemplate("cft-{sni}", "db-123.ratio1.link")).toBe("cft-db-123.ratio1.link");
    expect(renderTemplate("cft-{first}-{rest}", "db-123.ratio1.link")).toBe("cft-db-123-ratio1.link");
    expect(renderTemplate("{first}.tunnels.{rest}", "db-123.ratio1.link")).toBe("db-123.tunnels.ratio1.link");
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

  test("entries lose their leading dot and are lower-cased", () => {
    expect(suffixes).toEqual(["good.test", "other.test"]);
  });

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
  });

  test("an empty list allows every name", () => {
    expect(isAllowed("anything.test", [])).toBe(true);
  });
});

// The fleet store URL: which URLs are accepted, and that neither a problem text nor a redacted URL shows the password.
import { describe, expect, test } from "bun:test";
import { isFleetToken, parseFleetUrl, redactUrl, scrubSecrets } from "../../src/config/fleet-url.ts";

const SECRET = "Sup3r-Secret";

describe("parseFleetUrl", () => {
  test.each([
    "redis://127.0.0.1",
    "redis://localhost:6379",
    "rediss://cache.internal.example:6380/0",
    "redis://h/",
    "redis://h/15",
    "REDIS://h:1",
    "redis://h:65535",
    "redis://[::1]:6379/2",
    "redis://[2001:db8::7]",
    `redis://ttp:${SECRET}@h:6379/0`,
    `redis://:${SECRET}@h`,
    "redis://user@h",
    `redis://ttp:${encodeURIComponent("p@ss/w:rd#?%")}@h`,
  ])("accepts %s, as written", (url) => {
    expect(parseFleetUrl(url)).toEqual({ ok: url });
  });

  test.each([
    ["http://h:6379", "scheme"],
    ["valkey://h", "scheme"],
    ["redis:/h", "scheme"],
    ["h:6379", "scheme"],
    ["redis://", "host"],
    ["redis://:6379", "host"],
    ["redis://h:0", "port"],
    ["redis://h:65536", "port"],
    ["redis://h:06379", "port"],
    ["redis://h:", "port"],
    ["redis://h:63a", "port"],
    ["redis://h/-1", "path"],
    ["redis://h/01", "path"],
    ["redis://h/db", "path"],
    ["redis://h/0/1", "path"],
    ["redis://h?db=1", "query"],
    ["redis://h#x", "fragment"],
    ["redis://[::1", "IPv6"],
    ["redis://[::g]:1", "IPv6"],
    ["redis://[::1]x", "IPv6"],
    ["redis://ho st", "host"],
    ["redis://-h", "host"],
    [`redis://ttp:${SECRET}/x@h`, "percent-encoded"],
    [`redis://ttp:${SECRET} x@h`, "percent-encoded"],
    [`redis://ttp:${SECRET}%zz@h`, "percent-encoded"],
    [`redis://t:tp:${SECRET}@h:99999`, "port"],
  ])("refuses %s (%s)", (url, about) => {
    const result = parseFleetUrl(url);
    expect(result).toHaveProperty("problem");
    const problem = (result as { problem: string }).problem;
    expect(problem).toContain(about);
    expect(problem).not.toContain(SECRET);
  });

  test("a problem never quotes the input, whatever the password looks like", () => {
    for (const password of ["h", "6379", "redis", "the", "/", "?"]) {
      const result = parseFleetUrl(`redis://u:${password}@bad host:1/x`);
      expect((result as { problem: string }).problem).not.toContain(`:${password}@`);
    }
  });
});

describe("redactUrl", () => {
  test.each([
    [`redis://ttp:${SECRET}@h:6379/0`, "redis://***:***@h:6379/0"],
    [`redis://:${SECRET}@h`, "redis://:***@h"],
    [`rediss://${SECRET}@h`, "rediss://***@h"],
    ["redis://h:6379/1", "redis://h:6379/1"],
    // Not valid, but still hidden: everything up to the last @ counts as credentials.
    [`redis://ttp:${SECRET}/with/slash@h`, "redis://***:***@h"],
    [`redis://ttp:a@${SECRET}@h`, "redis://***:***@h"],
    [`ttp:${SECRET}@h:6379`, "***:***@h:6379"],
    [`http://u:${SECRET}@h`, "http://***:***@h"],
    ["", ""],
  ])("%s → %s", (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
    expect(redactUrl(url)).not.toContain(SECRET);
  });
});

describe("scrubSecrets", () => {
  test("removes the password as written and as decoded from any text", () => {
    const url = `redis://ttp:${encodeURIComponent("a@b c")}@h`;
    expect(scrubSecrets("AUTH failed for a@b c and a%40b%20c", url)).toBe("AUTH failed for *** and ***");
    expect(scrubSecrets("nothing to hide", "redis://h")).toBe("nothing to hide");
  });
});

describe("isFleetToken (fleet names and node ids)", () => {
  test.each(["tcp-tunnel-proxy", "a", "node_1.eu-west", "x".repeat(64)])("accepts %s", (text) => {
    expect(isFleetToken(text)).toBe(true);
  });
  test.each(["", "x".repeat(65), "a:b", "a*", "a?", "a[b]", "a b", "é"])("refuses %s", (text) => {
    expect(isFleetToken(text)).toBe(false);
  });
});

import { describe, expect, test } from "bun:test";
import { trustChecker } from "../../src/edge/trust.ts";

function trusts(entries: string[]): (address: string) => boolean {
  return trustChecker({ any: false, entries });
}

describe("a bare address is one host (/32, /128), never its neighbours", () => {
  test.each([
    ["10.0.0.1", "10.0.0.1", true],
    ["10.0.0.1", "10.0.0.2", false],
    ["10.0.0.1", "10.0.0.0", false],
    ["10.0.0.1", "11.0.0.1", false],
    ["10.0.0.1", "::ffff:10.0.0.1", true],
    ["10.0.0.1", "::ffff:10.0.0.2", false],
    ["::1", "::1", true],
    ["::1", "::2", false],
    ["::1", "::", false],
    ["::1", "0.0.0.1", false],
    ["2001:db8::7", "2001:db8::7", true],
    ["2001:db8::7", "2001:DB8:0:0:0:0:0:7", true],
    ["2001:db8::7", "2001:db8::8", false],
  ] as const)("%s: %s → %p", (entry, peer, expected) => {
    expect(trusts([entry])(peer)).toBe(expected);
  });
});

describe("CIDRs", () => {
  test.each([
    ["10.0.0.0/8", "10.0.0.0", true],
    ["10.0.0.0/8", "10.255.255.255", true],
    ["10.0.0.0/8", "11.0.0.0", false],
    ["10.0.0.0/8", "9.255.255.255", false],
    ["192.168.1.0/24", "192.168.1.200", true],
    ["192.168.1.0/24", "192.168.2.1", false],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::1", false],
    ["fd00::/8", "fdff::1", true],
    ["fd00::/8", "fe00::1", false],
    ["2001:db8::/32", "32.1.13.184", false],
  ] as const)("%s: %s → %p", (entry, peer, expected) => {
    expect(trusts([entry])(peer)).toBe(expected);
  });

  test("IPv4-mapped IPv6 peers (how a dual-stack listener reports IPv4) match IPv4 subnets", () => {
    const check = trusts(["10.0.0.0/8"]);
    expect(check("::ffff:10.1.2.3")).toBe(true);
    expect(check("::ffff:11.1.2.3")).toBe(false);
  });

  test("several entries, IPv4 and IPv6 mixed", () => {
    const check = trusts(["10.0.0.0/8", "::1", "192.0.2.7"]);
    expect(["10.9.9.9", "::1", "192.0.2.7", "::ffff:192.0.2.7"].map(check)).toEqual([true, true, true, true]);
    expect(["192.0.2.8", "::2", "127.0.0.1"].map(check)).toEqual([false, false, false]);
  });
});

describe("any and none", () => {
  test("`any` trusts every address", () => {
    const check = trustChecker({ any: true });
    expect(["1.2.3.4", "::1", "::ffff:1.2.3.4", "2001:db8::1"].map(check)).toEqual([true, true, true, true]);
  });

  test("an empty list trusts nobody (the default)", () => {
    const check = trusts([]);
    expect(["127.0.0.1", "::1", "10.0.0.1", "::ffff:127.0.0.1"].map(check)).toEqual([false, false, false, false]);
  });

  test("text that is not an address is never trusted", () => {
    const check = trusts(["10.0.0.0/8"]);
    expect(["", "localhost", "10.0.0.1/8"].map(check)).toEqual([false, false, false]);
  });
});

import { describe, expect, test } from "bun:test";
import { addressFamily, ipv6FromBytes, normaliseAddress, parseIPv4, parseIPv6 } from "../../src/protocol/address.ts";
import { hex } from "../helpers/builders.ts";

describe("canonical text: IPv4-mapped → IPv4, IPv6 per RFC 5952", () => {
  test.each([
    // Already canonical: unchanged.
    ["1.2.3.4", "1.2.3.4"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["2001:db8::1", "2001:db8::1"],
    ["::1", "::1"],
    ["::", "::"],
    ["1::", "1::"],
    // IPv4-mapped IPv6 in every spelling.
    ["::ffff:1.2.3.4", "1.2.3.4"],
    ["::FFFF:1.2.3.4", "1.2.3.4"],
    ["0:0:0:0:0:ffff:102:304", "1.2.3.4"],
    ["0000:0000:0000:0000:0000:FFFF:0102:0304", "1.2.3.4"],
    ["::ffff:127.0.0.1", "127.0.0.1"],
    ["::ffff:0:0", "0.0.0.0"],
    // RFC 5952 §4: lower case, no leading zeros, the longest (then first) run of zero groups as "::", never one group.
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:0db8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:0db8::0001", "2001:db8::1"],
    ["2001:db8::0:1", "2001:db8::1"],
    ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["ABCD:EF01:2345:6789:ABCD:EF01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"],
    ["0000:0000:0000:0000:0000:0000:0000:0001", "::1"],
    ["fe80:0:0:0:0:0:0:1", "fe80::1"],
    // Other embedded dotted quads are not IPv4 clients: plain RFC 5952 text.
    ["::1.2.3.4", "::102:304"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ])("%s → %s", (input, canonical) => {
    expect(normaliseAddress(input)).toBe(canonical);
  });

  test.each(["fe80::1%eth0", "fe80::1%1", "not an address", "", "01.2.3.4", "1:2:3:4:5:6:7:8:9"])("%p is not IP text: unchanged", (text) => {
    expect(normaliseAddress(text)).toBe(text);
  });

  test("an IPv4 peer address is returned as the very same string", () => {
    const peer = ["10", "1", "2", "3"].join(".");
    expect(Object.is(normaliseAddress(peer), peer)).toBe(true);
  });

  test("16 bytes from a PROXY v2 header read canonically", () => {
    expect(ipv6FromBytes(hex("00000000 00000000 0000ffff c0000201"), 0)).toBe("192.0.2.1");
    expect(ipv6FromBytes(hex("20010db8 00000000 00000000 00000001"), 0)).toBe("2001:db8::1");
    expect(ipv6FromBytes(hex("20010db8 00000000 00010000 00000001"), 0)).toBe("2001:db8::1:0:0:1");
    expect(ipv6FromBytes(hex("00000000 00000000 00000000 00000000"), 0)).toBe("::");
  });
});

describe("strict dotted quads (PROXY spec §2.1)", () => {
  test.each([
    ["0.0.0.0", 0],
    ["1.2.3.4", 0x01020304],
    ["255.255.255.255", 0xffffffff],
    ["10.0.0.1", 0x0a000001],
  ])("%s", (text, value) => {
    expect(parseIPv4(text)).toBe(value);
  });

  test.each(["01.2.3.4", "1.2.3.04", "1.2.3.00", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1..3.4", "1.2.3.4 ", " 1.2.3.4", "+1.2.3.4", "1.2.3.4/8", "1234.1.1.1", "", "a.b.c.d"])(
    "%p is refused",
    (text) => {
      expect(parseIPv4(text)).toBe(-1);
    },
  );
});

describe("IPv6 text (RFC 4291 §2.2), no zone ids", () => {
  test.each([
    ["::", [0, 0, 0, 0, 0, 0, 0, 0]],
    ["::1", [0, 0, 0, 0, 0, 0, 0, 1]],
    ["1::", [1, 0, 0, 0, 0, 0, 0, 0]],
    ["1:2:3:4:5:6:7::", [1, 2, 3, 4, 5, 6, 7, 0]],
    ["::2:3:4:5:6:7:8", [0, 2, 3, 4, 5, 6, 7, 8]],
    ["1:2:3:4:5:6:7:8", [1, 2, 3, 4, 5, 6, 7, 8]],
    ["FFFF:ffff::", [0xffff, 0xffff, 0, 0, 0, 0, 0, 0]],
    ["1:2:3:4:5:6:1.2.3.4", [1, 2, 3, 4, 5, 6, 0x0102, 0x0304]],
    ["::ffff:1.2.3.4", [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]],
  ])("%s", (text, groups) => {
    expect(parseIPv6(text)).toEqual(groups);
  });

  test.each([
    "fe80::1%eth0",
    "fe80::1%1",
    "fe80::%eth0",
    "1::2::3",
    ":::",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7",
    "12345::1",
    "g::1",
    "::1.02.3.4",
    "::1.2.3.4:1",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1.2.3.4",
    "[::1]",
    " ::1",
    "::1 ",
    "",
    ":",
    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555",
  ])("%p is refused", (text) => {
    expect(parseIPv6(text)).toBeUndefined();
  });
});

test("addressFamily is the family of the canonical form", () => {
  expect(addressFamily("1.2.3.4")).toBe(4);
  expect(addressFamily("::ffff:1.2.3.4")).toBe(4);
  expect(addressFamily("::1")).toBe(6);
  expect(addressFamily("2001:DB8::1")).toBe(6);
  expect(addressFamily("fe80::1%eth0")).toBe(0);
  expect(addressFamily("localhost")).toBe(0);
});

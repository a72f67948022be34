import { describe, expect, test } from "bun:test";
import { buildProxyV1, parseProxyV1 } from "../../src/protocol/proxy-v1.ts";
import { fromAscii } from "../../src/protocol/bytes.ts";
import { rng, Writer } from "../helpers/builders.ts";

const MAX_IPV6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

describe("accepted lines (PROXY spec §2.1, pires/go-proxyproto)", () => {
  test.each([
    ["PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "TCP4", "192.168.0.1", 56324, "192.168.0.11", 443],
    ["PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", "TCP4", "255.255.255.255", 65535, "255.255.255.255", 65535],
    ["PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", "TCP4", "0.0.0.0", 0, "0.0.0.0", 0],
    [`PROXY TCP6 ${MAX_IPV6} ${MAX_IPV6} 65535 65535\r\n`, "TCP6", MAX_IPV6, 65535, MAX_IPV6, 65535],
    ["PROXY TCP6 2001:db8::1 2001:db8::2 4000 19000\r\n", "TCP6", "2001:db8::1", 4000, "2001:db8::2", 19000],
    // Canonical addresses: one client, one text, however the balancer spelled it.
    ["PROXY TCP6 2001:DB8::1 ::1 4000 19000\r\n", "TCP6", "2001:db8::1", 4000, "::1", 19000],
    ["PROXY TCP6 2001:0db8:0:0:0:0:0:1 0:0:0:0:0:0:0:1 1 2\r\n", "TCP6", "2001:db8::1", 1, "::1", 2],
    ["PROXY TCP6 ::ffff:127.0.0.1 ::ffff:127.0.0.1 65533 65533\r\n", "TCP6", "127.0.0.1", 65533, "127.0.0.1", 65533],
    ["PROXY TCP6 ::FFFF:1.2.3.4 ::1 1 2\r\n", "TCP6", "1.2.3.4", 1, "::1", 2],
    ["PROXY TCP6 0:0:0:0:0:ffff:102:304 0:0:0:0:0:ffff:506:708 1 2\r\n", "TCP6", "1.2.3.4", 1, "5.6.7.8", 2],
  ] as const)("%p", (line, protocol, srcAddress, srcPort, dstAddress, dstPort) => {
    const input = fromAscii(line);
    for (let end = 0; end < input.length; end++) expect(parseProxyV1(input.subarray(0, end)).kind).toBe("needMore");
    const result = parseProxyV1(new Writer().bytes(input).u8(0x16).done());
    if (result.kind !== "done") throw new Error(`${JSON.stringify(line)} gave ${JSON.stringify(result)}`);
    expect(result.consumed).toBe(input.length);
    expect(result.value.protocol).toBe(protocol);
    expect(result.value.source).toEqual({ address: srcAddress, port: srcPort });
    expect(result.value.destination).toEqual({ address: dstAddress, port: dstPort });
    expect(text(result.value.bytes)).toBe(line);
  });

  test("the longest lines the spec allows: 56 (TCP4), 104 (TCP6) and 107 (UNKNOWN) bytes", () => {
    const tcp4 = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    const tcp6 = `PROXY TCP6 ${MAX_IPV6} ${MAX_IPV6} 65535 65535\r\n`;
    const unknown = `PROXY UNKNOWN ${MAX_IPV6} ${MAX_IPV6} 65535 65535\r\n`;
    expect([tcp4.length, tcp6.length, unknown.length]).toEqual([56, 104, 107]);
    for (const line of [tcp4, tcp6, unknown]) expect(parseProxyV1(fromAscii(line)).kind).toBe("done");
  });

  test.each([
    "PROXY UNKNOWN\r\n",
    `PROXY UNKNOWN ${MAX_IPV6} ${MAX_IPV6} 65535 65535\r\n`,
    "PROXY UNKNOWN 127.0.0.1 127.0.0.1 65536 65536\r\n",
    "PROXY UNKNOWN anything at all\r\n",
  ])("UNKNOWN ignores the rest of the line: %p", (line) => {
    const result = parseProxyV1(fromAscii(line));
    if (result.kind !== "done") throw new Error(JSON.stringify(result));
    expect(result.value).toMatchObject({ protocol: "UNKNOWN", source: null, destination: null });
    expect(result.consumed).toBe(line.length);
  });
});

describe("refused lines", () => {
  test.each([
    // Zone ids are not in the spec's address grammar, in either position.
    ["PROXY TCP6 fe80::1%eth0 fe80::2 80 443\r\n", "bad_address"],
    ["PROXY TCP6 fe80::1 fe80::2%eth0 80 443\r\n", "bad_address"],
    ["PROXY TCP6 fe80::1%1 ::1 80 443\r\n", "bad_address"],
    // Dotted quads: exactly four numbers 0-255, no leading zeros.
    ["PROXY TCP4 01.2.3.4 5.6.7.8 80 443\r\n", "bad_address"],
    ["PROXY TCP4 1.2.3.4 5.6.7.08 80 443\r\n", "bad_address"],
    ["PROXY TCP4 256.1.1.1 5.6.7.8 80 443\r\n", "bad_address"],
    ["PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad_address"],
    ["PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "bad_address"],
    ["PROXY TCP4 invalid invalid 65533 65533\r\n", "bad_address"],
    // The protocol dictates the family.
    ["PROXY TCP4 ::1 ::1 1 2\r\n", "bad_address"],
    ["PROXY TCP4 ::ffff:127.0.0.1 ::ffff:127.0.0.1 1 2\r\n", "bad_address"],
    ["PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n", "bad_address"],
    ["PROXY TCP6 192.0.2.1 192.0.2.2 1234 5678\r\n", "bad_address"],
    ["PROXY TCP6 2001:db8::1 192.0.2.1 51512 22\r\n", "bad_address"],
    ["PROXY TCP6 192.0.2.1 2001:db8::1 51512 22\r\n", "bad_address"],
    // IPv6 text: 128 bits, one "::", groups of at most 4 digits, a valid trailing quad.
    ["PROXY TCP6 not-an-ip ::1 1234 5678\r\n", "bad_address"],
    ["PROXY TCP6 1::2::3 ::1 1 2\r\n", "bad_address"],
    ["PROXY TCP6 12345::1 ::1 1 2\r\n", "bad_address"],
    ["PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", "bad_address"],
    ["PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "bad_address"],
    ["PROXY TCP6 ::1.02.3.4 ::1 1 2\r\n", "bad_address"],
    ["PROXY TCP6 [::1] ::1 1 2\r\n", "bad_address"],
    // Ports: decimal 0-65535, no leading zeros, no sign.
    ["PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad_port"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "bad_port"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n", "bad_port"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n", "bad_port"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 80 0x1bb\r\n", "bad_port"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8  443\r\n", "bad_port"],
    // Exactly one space between fields, nothing after the destination port.
    ["PROXY TCP4  1.2.3.4 5.6.7.8 80 443\r\n", "bad_fields"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n", "bad_fields"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 80 443 extra\r\n", "bad_fields"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "bad_fields"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", "bad_fields"],
    ["PROXY  TCP4 1.2.3.4 5.6.7.8 80 443\r\n", "bad_protocol"],
    ["PROXY \r\n", "bad_protocol"],
    ["PROXY SOMETHING\r\n", "bad_protocol"],
    ["PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "bad_protocol"],
    ["PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "bad_protocol"],
    ["PROXY UNKNOWNX\r\n", "bad_protocol"],
    ["PROXYjunk TCP4 1.2.3.4 5.6.7.8 80 443\r\n", "bad_prefix"],
    ["PROXYTCP4 1.2.3.4 5.6.7.8 80 443\r\n", "bad_prefix"],
    ["PROXY\r\n", "bad_prefix"],
    ["PROXZ", "bad_prefix"],
    // Only CRLF ends the line; no other control characters.
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bad_character"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "bad_character"],
    ["PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", "bad_character"],
    ["PROXY UNKNOWN \x00\r\n", "bad_character"],
  ])("%p is %s", (line, code) => {
    expect<object>(parseProxyV1(fromAscii(line))).toEqual({ kind: "invalid", code });
  });

  test("no CRLF within the first 107 bytes is too long", () => {
    const long = fromAscii(`PROXY UNKNOWN ${MAX_IPV6} ${MAX_IPV6} 65535 65535 \r\n`);
    expect(long.length).toBe(108);
    expect(parseProxyV1(long.subarray(0, 106)).kind).toBe("needMore");
    expect(parseProxyV1(long)).toEqual({ kind: "invalid", code: "too_long" });
    expect(parseProxyV1(long.subarray(0, 107))).toEqual({ kind: "invalid", code: "too_long" });
  });
});

describe("buildProxyV1", () => {
  test.each([
    [{ address: "10.1.2.3", port: 5555 }, { address: "10.0.0.1", port: 19000 }, 4, "PROXY TCP4 10.1.2.3 10.0.0.1 5555 19000\r\n"],
    [{ address: "::ffff:10.1.2.3", port: 5555 }, { address: "10.0.0.1", port: 19000 }, 4, "PROXY TCP4 10.1.2.3 10.0.0.1 5555 19000\r\n"],
    [{ address: "2001:DB8:0:0:0:0:0:1", port: 1 }, { address: "::1", port: 2 }, 6, "PROXY TCP6 2001:db8::1 ::1 1 2\r\n"],
    [{ address: "10.1.2.3", port: 1 }, { address: "::1", port: 2 }, 0, "PROXY UNKNOWN\r\n"],
  ] as const)("%p → %p", (source, destination, family, line) => {
    const built = buildProxyV1(source, destination, family);
    expect(text(built)).toBe(line);
    expect(parseProxyV1(built).kind).toBe("done");
  });
});

test("seeded mutations never throw and never consume past the line", () => {
  const random = rng(42);
  const seeds = ["PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", "PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 1 2\r\n"].map(fromAscii);
  for (let round = 0; round < 20_000; round++) {
    const input = (seeds[round % seeds.length] as Uint8Array).slice();
    input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
    const result = parseProxyV1(input);
    if (result.kind === "done") expect(result.consumed).toBeLessThanOrEqual(input.length);
  }
});

import { describe, expect, test } from "bun:test";
import { buildProxyV2, parseProxyV2 } from "../../src/protocol/proxy-v2.ts";
import { fromAscii } from "../../src/protocol/bytes.ts";
import { hex, ipv4Addresses, proxyV2, rng, Writer } from "../helpers/builders.ts";

// Byte values quoted from the PROXY protocol spec §2.2, never from the code under test.
const SIGNATURE = "0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a";
const LOCAL = "20";
const PROXY = "21";
const UNSPEC = "00";
const TCP4 = "11";
const UDP4 = "12";
const TCP6 = "21";

function parsed(input: Uint8Array) {
  const result = parseProxyV2(input);
  if (result.kind !== "done") throw new Error(`expected done, got ${JSON.stringify(result)}`);
  expect(result.consumed).toBe(input.length);
  expect(result.value.bytes).toEqual(input);
  for (let end = 0; end < input.length; end++) expect(parseProxyV2(input.subarray(0, end)).kind).toBe("needMore");
  return result.value;
}

describe("PROXY command", () => {
  test("TCP over IPv4: 192.0.2.1:56324 → 198.51.100.2:443", () => {
    const header = parsed(hex(`${SIGNATURE} ${PROXY} ${TCP4} 00 0c  c0 00 02 01  c6 33 64 02  dc 04  01 bb`));
    expect(header).toMatchObject({
      command: "PROXY",
      family: "INET",
      transport: "STREAM",
      source: { address: "192.0.2.1", port: 56324 },
      destination: { address: "198.51.100.2", port: 443 },
      tlvs: [],
    });
  });

  test("TCP over IPv6: 2001:db8::1:1234 → 2001:db8::2:443", () => {
    const header = parsed(
      hex(`${SIGNATURE} ${PROXY} ${TCP6} 00 24  20010db8 00000000 00000000 00000001  20010db8 00000000 00000000 00000002  04 d2  01 bb`),
    );
    expect(header).toMatchObject({ family: "INET6", transport: "STREAM" });
    expect([header.source, header.destination]).toEqual([
      { address: "2001:db8::1", port: 1234 },
      { address: "2001:db8::2", port: 443 },
    ]);
  });

  test("TCP over IPv6 reports canonical addresses: IPv4-mapped → IPv4, RFC 5952 compression", () => {
    const header = parsed(
      hex(`${SIGNATURE} ${PROXY} ${TCP6} 00 24  00000000 00000000 0000ffff c0000201  20010db8 00000000 00010000 00000001  00 01  00 02`),
    );
    expect(header.source).toEqual({ address: "192.0.2.1", port: 1 });
    expect(header.destination).toEqual({ address: "2001:db8::1:0:0:1", port: 2 });
  });

  test("UNSPEC carries no addresses", () => {
    expect(parsed(hex(`${SIGNATURE} ${PROXY} ${UNSPEC} 00 00`))).toMatchObject({ command: "PROXY", family: "UNSPEC", source: null });
  });

  test("UDP parses (the prelude refuses it, not the parser)", () => {
    expect(parsed(hex(`${SIGNATURE} ${PROXY} ${UDP4} 00 0c  01020304 05060708 0001 0002`))).toMatchObject({ family: "INET", transport: "DGRAM" });
  });

  test("TLVs after the addresses (ALPN, AUTHORITY, NOOP)", () => {
    const input = proxyV2({
      family: 0x11,
      addresses: ipv4Addresses([1, 2, 3, 4], [5, 6, 7, 8], 1, 2),
      tlvs: [
        { type: 0x01, value: fromAscii("postgresql") },
        { type: 0x02, value: fromAscii("db.example") },
        { type: 0x04, value: new Uint8Array() },
      ],
    });
    const header = parsed(input);
    expect(header.tlvs.map((t) => [t.type, new TextDecoder().decode(t.value)])).toEqual([
      [1, "postgresql"],
      [2, "db.example"],
      [4, ""],
    ]);
  });

  test("bytes after the header are not consumed", () => {
    const header = hex(`${SIGNATURE} ${PROXY} ${TCP4} 00 0c  01020304 05060708 0001 0002`);
    const result = parseProxyV2(new Writer().bytes(header).u8(0x16).done());
    expect(result.kind === "done" && result.consumed).toBe(28);
  });
});

describe("LOCAL command: family ignored, block skipped unparsed whatever its length (spec §2.2)", () => {
  test.each([
    ["UNSPEC, length 0", `${SIGNATURE} ${LOCAL} ${UNSPEC} 00 00`],
    ["TCP4, length 0", `${SIGNATURE} ${LOCAL} ${TCP4} 00 00`],
    ["TCP6, length 0", `${SIGNATURE} ${LOCAL} ${TCP6} 00 00`],
    ["TCP4 with a 5-byte non-address block", `${SIGNATURE} ${LOCAL} ${TCP4} 00 05  aa bb cc dd ee`],
    ["TCP6 with an IPv4-sized block", `${SIGNATURE} ${LOCAL} ${TCP6} 00 0c  01020304 05060708 0001 0002`],
    ["TCP4 with addresses and a TLV that overruns", `${SIGNATURE} ${LOCAL} ${TCP4} 00 10  01020304 05060708 0001 0002  01 00 09 61`],
    ["UDP4", `${SIGNATURE} ${LOCAL} ${UDP4} 00 00`],
    ["an undefined family byte", `${SIGNATURE} ${LOCAL} ff 00 03  01 02 03`],
  ])("%s is accepted", (_, bytes) => {
    const header = parsed(hex(bytes));
    expect(header).toMatchObject({ command: "LOCAL", family: "UNSPEC", transport: "UNSPEC", source: null, destination: null, tlvs: [] });
  });

  test("a LOCAL block is still capped at 4096 bytes", () => {
    const atCap = new Writer().bytes(hex(`${SIGNATURE} ${LOCAL} ${TCP4} 10 00`)).bytes(new Uint8Array(4096)).done();
    expect(parseProxyV2(atCap).kind).toBe("done");
    expect(parseProxyV2(hex(`${SIGNATURE} ${LOCAL} ${TCP4} 10 01`))).toEqual({ kind: "invalid", code: "too_long" });
  });
});

describe("refused headers", () => {
  test.each([
    ["signature", `0d 0a 0d 0a 00 00`, "bad_signature"],
    ["version 1", `${SIGNATURE} 11 ${TCP4} 00 0c`, "bad_version"],
    ["version 3", `${SIGNATURE} 31 ${TCP4} 00 0c`, "bad_version"],
    ["command 2", `${SIGNATURE} 22 ${TCP4} 00 0c`, "bad_command"],
    ["command 15", `${SIGNATURE} 2f ${TCP4} 00 0c`, "bad_command"],
    ["family 4", `${SIGNATURE} ${PROXY} 41 00 0c`, "bad_family"],
    ["transport 3", `${SIGNATURE} ${PROXY} 13 00 0c`, "bad_family"],
    ["TCP4 block shorter than 12 bytes", `${SIGNATURE} ${PROXY} ${TCP4} 00 0b`, "short_addresses"],
    ["TCP6 block shorter than 36 bytes", `${SIGNATURE} ${PROXY} ${TCP6} 00 0c`, "short_addresses"],
    ["length 4097", `${SIGNATURE} ${PROXY} ${TCP4} 10 01`, "too_long"],
    ["a TLV that overruns the header", `${SIGNATURE} ${PROXY} ${TCP4} 00 10  01020304 05060708 0001 0002  01 00 09 61`, "bad_tlv"],
    ["2 bytes where a TLV needs 3", `${SIGNATURE} ${PROXY} ${TCP4} 00 0e  01020304 05060708 0001 0002  01 00`, "bad_tlv"],
  ])("%s", (_, bytes, code) => {
    expect<object>(parseProxyV2(hex(bytes))).toEqual({ kind: "invalid", code });
  });

  test("a bad version, command or family is refused as soon as its byte arrives", () => {
    expect(parseProxyV2(hex(`${SIGNATURE} 11`))).toEqual({ kind: "invalid", code: "bad_version" });
    expect(parseProxyV2(hex(`${SIGNATURE} 22`))).toEqual({ kind: "invalid", code: "bad_command" });
    expect(parseProxyV2(hex(`${SIGNATURE} ${PROXY} 41`))).toEqual({ kind: "invalid", code: "bad_family" });
    expect(parseProxyV2(hex(`${SIGNATURE} ${LOCAL} 41`))).toEqual({ kind: "needMore" });
  });
});

describe("buildProxyV2 writes the spec's bytes", () => {
  test("TCP over IPv4", () => {
    const built = buildProxyV2({ address: "10.1.2.3", port: 5555 }, { address: "10.0.0.1", port: 19000 }, 4);
    expect(built).toEqual(hex(`${SIGNATURE} ${PROXY} ${TCP4} 00 0c  0a 01 02 03  0a 00 00 01  15 b3  4a 38`));
  });

  test("an IPv4-mapped client is written as TCP over IPv4", () => {
    const built = buildProxyV2({ address: "::ffff:10.1.2.3", port: 5555 }, { address: "10.0.0.1", port: 19000 }, 4);
    expect(built).toEqual(hex(`${SIGNATURE} ${PROXY} ${TCP4} 00 0c  0a 01 02 03  0a 00 00 01  15 b3  4a 38`));
  });

  test("TCP over IPv6", () => {
    const built = buildProxyV2({ address: "2001:db8::1", port: 1 }, { address: "::1", port: 2 }, 6);
    expect(built).toEqual(
      hex(`${SIGNATURE} ${PROXY} ${TCP6} 00 24  20010db8 00000000 00000000 00000001  00000000 00000000 00000000 00000001  00 01  00 02`),
    );
  });

  test("UNSPEC when the families differ", () => {
    expect(buildProxyV2({ address: "10.1.2.3", port: 1 }, { address: "::1", port: 2 }, 0)).toEqual(hex(`${SIGNATURE} ${PROXY} ${UNSPEC} 00 00`));
  });
});

test("seeded mutations never throw and never consume past the header", () => {
  const random = rng(42);
  const seeds = [
    hex(`${SIGNATURE} ${PROXY} ${TCP4} 00 0c  c0 00 02 01  c6 33 64 02  dc 04  01 bb`),
    hex(`${SIGNATURE} ${LOCAL} ${TCP4} 00 05  aa bb cc dd ee`),
    proxyV2({ family: 0x11, addresses: ipv4Addresses([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlvs: [{ type: 1, value: fromAscii("abc") }] }),
  ];
  for (let round = 0; round < 20_000; round++) {
    const input = (seeds[round % seeds.length] as Uint8Array).slice();
    input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
    const cut = input.subarray(0, Math.floor(random() * (input.length + 1)));
    const result = parseProxyV2(cut);
    expect(["needMore", "invalid", "done"]).toContain(result.kind);
    if (result.kind === "done") expect(result.consumed).toBeLessThanOrEqual(cut.length);
  }
});

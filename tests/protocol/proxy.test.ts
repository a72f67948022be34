import { describe, expect, test } from "bun:test";
import { buildProxyV2, parseProxyV2, PROXY_V2_MAX_LENGTH } from "../../src/protocol/proxy-v2.ts";
import { fromAscii } from "../../src/protocol/bytes.ts";
import { ipv4Addresses, proxyV2, rng, Writer } from "../helpers/builders.ts";

function expectEveryPrefixNeedsMore(parse: (b: Uint8Array) => { kind: string }, input: Uint8Array): void {
  for (let end = 0; end < input.length; end++) expect(parse(input.subarray(0, end)).kind).toBe("needMore");
}

describe("PROXY v2", () => {
  const tcp4 = proxyV2({ addresses: ipv4Addresses([192, 0, 2, 1], [198, 51, 100, 2], 56324, 443) });

  test("TCP4 with every prefix", () => {
    expectEveryPrefixNeedsMore(parseProxyV2, tcp4);
    const result = parseProxyV2(new Writer().bytes(tcp4).u8(0x16).done());
    if (result.kind !== "done") throw new Error(JSON.stringify(result));
    expect(result.consumed).toBe(tcp4.length);
    expect(result.value).toMatchObject({
      command: "PROXY",
      family: "INET",
      transport: "STREAM",
      source: { address: "192.0.2.1", port: 56324 },
      destination: { address: "198.51.100.2", port: 443 },
    });
    expect(result.value.bytes).toEqual(tcp4);
  });

  test("TCP6 and TLVs", () => {
    const addresses = new Writer()
      .bytes(new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1]))
      .bytes(new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 2]))
      .u16(1234)
      .u16(443)
      .done();
    const input = proxyV2({
      family: 0x21,
      addresses,
      tlvs: [
        { type: 0x01, value: fromAscii("postgresql") },
        { type: 0x02, value: fromAscii("db.example") },
        { type: 0x04, value: new Uint8Array() },
      ],
    });
    expectEveryPrefixNeedsMore(parseProxyV2, input);
    const result = parseProxyV2(input);
    if (result.kind !== "done") throw new Error(JSON.stringify(result));
    expect(result.value.source).toEqual({ address: "2001:db8::1", port: 1234 });
    expect(result.value.tlvs.map((t) => [t.type, new TextDecoder().decode(t.value)])).toEqual([
      [1, "postgresql"],
      [2, "db.example"],
      [4, ""],
    ]);
  });

  test("LOCAL ignores addresses", () => {
    const result = parseProxyV2(proxyV2({ command: 0, family: 0x00 }));
    expect(result.kind === "done" && result.value).toMatchObject({ command: "LOCAL", source: null });
  });

  test.each([
    ["bad version", (b: Uint8Array) => (b[12] = 0x11), "bad_version"],
    ["bad command", (b: Uint8Array) => (b[12] = 0x25), "bad_command"],
    ["bad family", (b: Uint8Array) => (b[13] = 0x41), "bad_family"],
    ["addresses shorter than the family needs", (b: Uint8Array) => (b[15] = 4), "short_addresses"],
    ["length over the cap", (b: Uint8Array) => { b[14] = (PROXY_V2_MAX_LENGTH + 1) >> 8; b[15] = (PROXY_V2_MAX_LENGTH + 1) & 0xff; }, "too_long"],
    ["bad signature", (b: Uint8Array) => (b[5] = 0), "bad_signature"],
  ] as [string, (b: Uint8Array) => void, string][])("%s", (_, mutate, code) => {
    const input = tcp4.slice();
    mutate(input);
    expect<object>(parseProxyV2(input)).toEqual({ kind: "invalid", code });
  });

  test("a TLV that overruns the header is invalid", () => {
    const input = proxyV2({ addresses: ipv4Addresses([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlvs: [{ type: 1, value: fromAscii("abc") }] });
    input[input.length - 4] = 9;
    expect(parseProxyV2(input)).toEqual({ kind: "invalid", code: "bad_tlv" });
  });

  test("build round-trips for IPv4 and IPv6", () => {
    const v4 = parseProxyV2(buildProxyV2({ address: "10.1.2.3", port: 5555 }, { address: "10.0.0.1", port: 19000 }, 4));
    expect(v4.kind === "done" && [v4.value.source, v4.value.destination]).toEqual([
      { address: "10.1.2.3", port: 5555 },
      { address: "10.0.0.1", port: 19000 },
    ]);
    const v6 = parseProxyV2(buildProxyV2({ address: "fe80::1:2", port: 1 }, { address: "::1", port: 2 }, 6));
    expect(v6.kind === "done" && v6.value.source).toEqual({ address: "fe80::1:2", port: 1 });
  });

  test("seeded mutations never throw", () => {
    const random = rng(42);
    for (let round = 0; round < 20_000; round++) {
      const input = tcp4.slice();
      input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      const v2 = parseProxyV2(input.subarray(0, Math.floor(random() * (input.length + 1))));
      expect(["needMore", "invalid", "done"]).toContain(v2.kind);
    }
  });
});

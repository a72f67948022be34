// The relay message: its wire form, and every way a message read off the channel can be refused.
import { describe, expect, test } from "bun:test";
import { decodeCancel, encodeCancel, type CancelNotice, type MessageProblem } from "../../src/fleet/message.ts";
import { hex, ipv4Addresses, proxyV2 } from "../helpers/builders.ts";
import { cancelRequest } from "../helpers/wire.ts";

const NOW = 1_767_225_600_000;
/** CancelRequest: length 16, code 80877102 (04d2162e), process id 1234, secret key 5678. */
const REQUEST_HEX = "00000010" + "04d2162e" + "000004d2" + "0000162e";
const V1_HEADER = new TextEncoder().encode("PROXY TCP4 203.0.113.7 10.0.0.1 51234 5432\r\n");

function wire(overrides: Record<string, unknown> = {}): string {
  const base: Record<string, unknown> = {
    v: 1,
    from: "node-a",
    at: NOW - 100,
    client: "203.0.113.7",
    client_port: 51234,
    local_address: "10.0.0.1",
    local_port: 5432,
    request: REQUEST_HEX,
    header: null,
  };
  return JSON.stringify({ ...base, ...overrides });
}

describe("encodeCancel", () => {
  test("one flat JSON object: version, sender, time, client, local address, the request as hex, the header as base64", () => {
    const notice: CancelNotice = {
      client: "2001:db8::7",
      clientPort: 40000,
      local: { address: "10.0.0.1", port: 5432 },
      request: cancelRequest(1234, 5678),
      header: V1_HEADER,
    };
    expect(JSON.parse(encodeCancel(notice, "node-a", NOW + 0.4))).toEqual({
      v: 1,
      from: "node-a",
      at: NOW,
      client: "2001:db8::7",
      client_port: 40000,
      local_address: "10.0.0.1",
      local_port: 5432,
      request: REQUEST_HEX,
      header: Buffer.from(V1_HEADER).toString("base64"),
    });
  });

  test("what encodeCancel writes, decodeCancel reads back", () => {
    const header = proxyV2({ addresses: ipv4Addresses([203, 0, 113, 7], [10, 0, 0, 1], 51234, 5432) });
    const notice: CancelNotice = { client: "203.0.113.7", clientPort: 51234, local: { address: "10.0.0.1", port: 5432 }, request: cancelRequest(7, 9), header };
    const decoded = decodeCancel(encodeCancel(notice, "node-b", NOW), NOW);
    expect(decoded).toEqual({ kind: "cancel", cancel: { ...notice, from: "node-b", at: NOW } });
  });
});

describe("decodeCancel", () => {
  test("a valid message, with no header and with a v1 header", () => {
    const plain = decodeCancel(wire(), NOW);
    expect(plain).toEqual({
      kind: "cancel",
      cancel: {
        from: "node-a",
        at: NOW - 100,
        client: "203.0.113.7",
        clientPort: 51234,
        local: { address: "10.0.0.1", port: 5432 },
        request: hex(REQUEST_HEX),
        header: null,
      },
    });
    const withHeader = decodeCancel(wire({ header: Buffer.from(V1_HEADER).toString("base64") }), NOW);
    expect(withHeader.kind === "cancel" && withHeader.cancel.header).toEqual(V1_HEADER);
  });

  test.each([
    ["not JSON", "{", "not_json"],
    ["a JSON array", "[1]", "bad_field"],
    ["JSON null", "null", "bad_field"],
    ["version 2", wire({ v: 2 }), "bad_version"],
    ["version as text", wire({ v: "1" }), "bad_version"],
    ["a missing field", JSON.stringify({ ...JSON.parse(wire()), header: undefined }), "bad_field"],
    ["an extra field", wire({ extra: 1 }), "bad_field"],
    ["an empty sender", wire({ from: "" }), "bad_field"],
    ["a sender that is not a node id", wire({ from: "a b" }), "bad_field"],
    ["a fractional time", wire({ at: NOW - 0.5 }), "bad_field"],
    ["a time as text", wire({ at: String(NOW) }), "bad_field"],
    ["a client that is not an address", wire({ client: "db.example" }), "bad_field"],
    ["an IPv4-mapped client (not canonical)", wire({ client: "::ffff:203.0.113.7" }), "bad_field"],
    ["an upper-case IPv6 client (not canonical)", wire({ client: "2001:DB8::7" }), "bad_field"],
    ["a client port above 65535", wire({ client_port: 65536 }), "bad_field"],
    ["a negative local port", wire({ local_port: -1 }), "bad_field"],
    ["a local address with a zone", wire({ local_address: "fe80::1%eth0" }), "bad_field"],
    ["a 15-byte request", wire({ request: REQUEST_HEX.slice(0, 30) }), "not_cancel_request"],
    ["a 17-byte request", wire({ request: REQUEST_HEX + "00" }), "not_cancel_request"],
    ["upper-case hex", wire({ request: REQUEST_HEX.toUpperCase() }), "not_cancel_request"],
    ["a length field of 17", wire({ request: "00000011" + REQUEST_HEX.slice(8) }), "not_cancel_request"],
    ["an SSLRequest code (80877103)", wire({ request: "00000010" + "04d2162f" + REQUEST_HEX.slice(16) }), "not_cancel_request"],
    ["a request as an array", wire({ request: [0, 0, 0, 16] }), "not_cancel_request"],
    ["a header that is not base64", wire({ header: "%%%%" }), "bad_header"],
    ["unpadded base64 (44 bytes need one =)", wire({ header: Buffer.from(V1_HEADER).toString("base64").replace(/=$/, "") }), "bad_header"],
    ["base64 with a line break", wire({ header: Buffer.from(V1_HEADER).toString("base64").replace(/^(.{8})/, "$1\n") }), "bad_header"],
    ["a header that is not a PROXY header", wire({ header: Buffer.from("GET / HTTP/1.1\r\n").toString("base64") }), "bad_header"],
    ["a PROXY header with bytes after it", wire({ header: Buffer.concat([V1_HEADER, Buffer.from("x")]).toString("base64") }), "bad_header"],
    ["a header as a number", wire({ header: 5 }), "bad_header"],
    ["a message 5.001 s old", wire({ at: NOW - 5001 }), "stale"],
    ["a message 5.001 s in the future", wire({ at: NOW + 5001 }), "future"],
  ])("refuses %s", (_, text, problem) => {
    expect(decodeCancel(text, NOW)).toEqual({ kind: "invalid", problem: problem as MessageProblem });
  });

  test("a v2 header longer than 16 + 4096 bytes is refused, one of exactly that length is read", () => {
    const tlv = (length: number) => ({ type: 0xe0, value: new Uint8Array(length) });
    const addresses = ipv4Addresses([203, 0, 113, 7], [10, 0, 0, 1], 51234, 5432);
    const largest = proxyV2({ addresses, tlvs: [tlv(4096 - 12 - 3)] });
    expect(largest.length).toBe(16 + 4096);
    expect(decodeCancel(wire({ header: largest.toBase64() }), NOW).kind).toBe("cancel");
    const tooLong = proxyV2({ addresses, tlvs: [tlv(4096 - 12 - 3 + 1)] });
    expect(decodeCancel(wire({ header: tooLong.toBase64() }), NOW)).toEqual({ kind: "invalid", problem: "bad_header" });
  });

  test("a message over 16 KiB is refused before it is parsed, even when it is valid JSON", () => {
    const padded = wire().slice(0, -1) + `,"pad":"${"x".repeat(16 * 1024)}"}`;
    expect(decodeCancel(padded, NOW)).toEqual({ kind: "invalid", problem: "oversized" });
    expect(decodeCancel("x".repeat(16 * 1024 + 1), NOW)).toEqual({ kind: "invalid", problem: "oversized" });
  });

  test("exactly 5 s old or ahead is still accepted", () => {
    expect(decodeCancel(wire({ at: NOW - 5000 }), NOW).kind).toBe("cancel");
    expect(decodeCancel(wire({ at: NOW + 5000 }), NOW).kind).toBe("cancel");
  });
});

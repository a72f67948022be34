import { describe, expect, test } from "bun:test";
import { ALERT_INTERNAL_ERROR, ALERT_UNRECOGNIZED_NAME, parseClientHelloRecords, type ClientHello } from "../../src/protocol/tls.ts";
import type { ParseResult } from "../../src/protocol/result.ts";
import { clientHello, fixture, records, rng, Writer } from "../helpers/builders.ts";

const REAL_CLIENTS = ["openssl-s_client", "curl", "node-tls"] as const;

function expectDone(result: ParseResult<ClientHello>): ClientHello {
  if (result.kind !== "done") throw new Error(`expected done, got ${JSON.stringify(result)}`);
  return result.value;
}

/** Every proper prefix needs more; the whole input gives `expected`, consuming all of it. */
function expectPrefixes(input: Uint8Array, expected: ParseResult<ClientHello>): void {
  for (let end = 0; end < input.length; end++) {
    const result = parseClientHelloRecords(input.subarray(0, end));
    if (result.kind !== "needMore") throw new Error(`prefix of ${end}/${input.length} bytes gave ${JSON.stringify(result)}`);
  }
  expect<object>(parseClientHelloRecords(input)).toEqual(expected);
}

describe("ClientHello fixtures from real clients", () => {
  test.each(REAL_CLIENTS)("%s: every prefix needs more, the whole gives the SNI", (name) => {
    const input = fixture(name);
    const result = parseClientHelloRecords(input);
    expect(expectDone(result).serverName).toBe("db-1.demo.test");
    expectPrefixes(input, result);
  });

  test("psql: the hello after the 8-byte SSLRequest", () => {
    const input = fixture("psql").subarray(8);
    expect(expectDone(parseClientHelloRecords(input)).serverName).toBe("db-1.demo.test");
    expectPrefixes(input, parseClientHelloRecords(input));
  });

  test("curl and node:tls offer ALPN", () => {
    expect(expectDone(parseClientHelloRecords(fixture("curl"))).alpn).toEqual(["h2", "http/1.1"]);
    expect(expectDone(parseClientHelloRecords(fixture("node-tls"))).alpn).toEqual(["h2", "http/1.1"]);
  });
});

describe("built ClientHellos", () => {
  test("single record with SNI and ALPN postgresql", () => {
    const input = records(clientHello({ names: ["db-1.demo.test"], alpn: ["postgresql"] }));
    const hello = expectDone(parseClientHelloRecords(input));
    expect(hello.serverName).toBe("db-1.demo.test");
    expect(hello.alpn).toEqual(["postgresql"]);
    expectPrefixes(input, parseClientHelloRecords(input));
  });

  test("split over many records, the handshake header itself split", () => {
    const small = clientHello({ names: ["a.example.test"] });
    const padded = clientHello({ names: ["a.example.test"], padding: 3000 });
    for (const size of [1, 2, 3, 5, 100, 1000]) {
      const input = records(size < 10 ? small : padded, size);
      if (size >= 10) expectPrefixes(input, parseClientHelloRecords(input));
      expect(expectDone(parseClientHelloRecords(input)).serverName).toBe("a.example.test");
    }
  });

  test("16 KiB padded hello and a 60 KiB hello over four records", () => {
    const big = records(clientHello({ names: ["big.example.test"], padding: 16 * 1024 }));
    expect(expectDone(parseClientHelloRecords(big)).serverName).toBe("big.example.test");
    const huge = records(clientHello({ names: ["huge.example.test"], padding: 60 * 1024 }));
    expect(expectDone(parseClientHelloRecords(huge)).serverName).toBe("huge.example.test");
  });

  test("no server_name extension", () => {
    expect(expectDone(parseClientHelloRecords(records(clientHello({ alpn: ["h2"] })))).serverName).toBeNull();
  });

  test("bytes after the hello are not consumed", () => {
    const hello = records(clientHello({ names: ["x.example.test"] }));
    const input = new Writer().bytes(hello).bytes(new Uint8Array([20, 3, 3, 0, 1, 1])).done();
    const result = parseClientHelloRecords(input);
    expect(result.kind === "done" && result.consumed).toBe(hello.length);
  });

  test("two host_name entries are refused", () => {
    expect(parseClientHelloRecords(records(clientHello({ names: ["a.test.x", "b.test.x"] })))).toEqual({
      kind: "invalid",
      code: "duplicate_server_name",
    });
  });
});

describe("malformed input is invalid, never an exception", () => {
  const valid = records(clientHello({ names: ["db.example.test"] }));
  const withByte = (offset: number, value: number) => {
    const copy = valid.slice();
    copy[offset] = value;
    return copy;
  };

  test.each([
    ["not a handshake record", withByte(0, 23), "not_handshake"],
    ["SSLv2-style version", withByte(1, 2), "bad_version"],
    ["empty record", new Uint8Array([22, 3, 1, 0, 0]), "empty_record"],
    ["ServerHello instead of ClientHello", withByte(5, 2), "not_client_hello"],
    ["hello longer than 64 KiB", new Writer().u8(22).u16(0x0301).u16(4).u8(1).u24(65537).done(), "hello_too_long"],
  ] as [string, Uint8Array, string][])("%s", (_, input, code) => {
    expect<object>(parseClientHelloRecords(input)).toEqual({ kind: "invalid", code });
  });

  test("duplicate extensions and bad vectors", () => {
    const dup = records(clientHello({ names: ["a.test.x"], extra: [{ type: 43, data: new Uint8Array([2, 3, 4]) }] }));
    expect(parseClientHelloRecords(dup)).toEqual({ kind: "invalid", code: "duplicate_extension" });
    const badAlpn = records(clientHello({ extra: [{ type: 16, data: new Uint8Array([0, 5, 9, 1]) }] }));
    expect(parseClientHelloRecords(badAlpn)).toEqual({ kind: "invalid", code: "malformed_extension" });
  });

  test("too many tiny records", () => {
    const input = records(clientHello({ names: ["a.test.x"], padding: 2000 }), 1);
    expect(parseClientHelloRecords(input)).toEqual({ kind: "invalid", code: "too_many_records" });
  });

  test("seeded mutations: no throw, and a result never depends on bytes past `consumed`", () => {
    const random = rng(0x5eed);
    const seeds = [...REAL_CLIENTS.map(fixture), valid, records(clientHello({ names: ["m.test.x"], alpn: ["a", "b"] }), 50)];
    for (let round = 0; round < 20_000; round++) {
      const input = (seeds[round % seeds.length] as Uint8Array).slice();
      const edits = 1 + Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      const cut = random() < 0.3 ? input.subarray(0, Math.floor(random() * input.length)) : input;
      const result = parseClientHelloRecords(cut);
      if (result.kind === "done") {
        expect(result.consumed).toBeLessThanOrEqual(cut.length);
        expect(parseClientHelloRecords(cut.subarray(0, result.consumed))).toEqual(result);
        const padded = new Writer().bytes(cut.subarray(0, result.consumed)).bytes(new Uint8Array(64).fill(0xff)).done();
        expect(parseClientHelloRecords(padded)).toEqual(result);
      }
    }
  });
});

describe("record length cap: 2^14 + 2048 = 18432 bytes of payload (RFC 8446 §5.2)", () => {
  /** A ClientHello handshake message of exactly `length` bytes, grown with the padding extension. */
  function helloOfLength(length: number): Uint8Array {
    const base = clientHello({ names: ["cap.example.test"], padding: 1 }).length;
    const hello = clientHello({ names: ["cap.example.test"], padding: 1 + length - base });
    expect(hello.length).toBe(length);
    return hello;
  }

  test("a record of exactly 18432 bytes is accepted", () => {
    const input = new Writer().bytes(new Uint8Array([0x16, 0x03, 0x01, 0x48, 0x00])).bytes(helloOfLength(18432)).done();
    const result = parseClientHelloRecords(input);
    expect(result.kind === "done" && [result.value.serverName, result.consumed]).toEqual(["cap.example.test", 5 + 18432]);
  });

  test("a record of 18433 bytes is refused from its header alone, and with its payload", () => {
    const header = new Uint8Array([0x16, 0x03, 0x01, 0x48, 0x01]);
    expect(parseClientHelloRecords(header)).toEqual({ kind: "invalid", code: "record_too_long" });
    const whole = new Writer().bytes(header).bytes(helloOfLength(18433)).done();
    expect(parseClientHelloRecords(whole)).toEqual({ kind: "invalid", code: "record_too_long" });
  });
});

describe("fatal alerts are TLS records with record version 0x0303 (RFC 8446 §5.1, §6)", () => {
  test("unrecognized_name (112) is 15 03 03 00 02 02 70", () => {
    expect(ALERT_UNRECOGNIZED_NAME).toEqual(new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]));
  });

  test("internal_error (80) is 15 03 03 00 02 02 50", () => {
    expect(ALERT_INTERNAL_ERROR).toEqual(new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50]));
  });
});

test("a ClientHello of exactly 65,536 bytes (the cap) parses across records; one byte more is refused", () => {
  const base = clientHello({ names: ["big.example.test"], padding: 1 });
  const size = (padding: number) => clientHello({ names: ["big.example.test"], padding }).length - 4;
  const padding = 1 + (65_536 - (base.length - 4));
  expect(size(padding)).toBe(65_536);
  const exact = records(clientHello({ names: ["big.example.test"], padding }));
  const parsed = parseClientHelloRecords(exact);
  expect(parsed.kind).toBe("done");
  if (parsed.kind === "done") {
    expect(parsed.value.serverName).toBe("big.example.test");
    expect(parsed.consumed).toBe(exact.length);
  }
  expect(parseClientHelloRecords(records(clientHello({ names: ["big.example.test"], padding: padding + 1 })))).toEqual({ kind: "invalid", code: "hello_too_long" });
});

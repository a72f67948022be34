import { describe, expect, test } from "bun:test";
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  SSL_REQUEST,
  SSL_REQUEST_CODE,
  TLS_REQUIRED_ERROR,
  parsePostgresPrelude,
} from "../../src/protocol/postgres.ts";
import { fixture, pgRequest, startupMessage } from "../helpers/builders.ts";

describe("PostgreSQL preludes", () => {
  test("the SSLRequest psql sends, at every prefix", () => {
    const input = fixture("psql").subarray(0, 8);
    expect(input).toEqual(SSL_REQUEST);
    for (let end = 0; end < 8; end++) expect(parsePostgresPrelude(input.subarray(0, end)).kind).toBe("needMore");
    expect(parsePostgresPrelude(fixture("psql"))).toEqual({ kind: "done", value: "SSLRequest", consumed: 8 });
  });

  test.each([
    [pgRequest(GSSENC_REQUEST_CODE), "GSSENCRequest"],
    [startupMessage({ user: "app", database: "app" }), "StartupMessage"],
  ] as [Uint8Array, string][])("%#: %s", (input, value) => {
    expect<object>(parsePostgresPrelude(input)).toEqual({ kind: "done", value, consumed: 8 });
  });

  test("a CancelRequest is complete only with its process id and secret key: 16 bytes", () => {
    const cancel = new Uint8Array([0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef]);
    for (let end = 0; end < 16; end++) expect(parsePostgresPrelude(cancel.subarray(0, end)).kind).toBe("needMore");
    expect<object>(parsePostgresPrelude(cancel)).toEqual({ kind: "done", value: "CancelRequest", consumed: 16 });
  });

  test.each([
    [pgRequest(SSL_REQUEST_CODE, 12), "bad_length"],
    [pgRequest(CANCEL_REQUEST_CODE, 8), "bad_length"],
    [pgRequest(12345678), "unknown_code"],
    [pgRequest(196608, 20000), "bad_length"],
    [new Uint8Array([1, 0, 0, 8]), "bad_length"],
    [new Uint8Array([0, 1]), "bad_length"],
    [new Uint8Array([0, 0, 0, 4]), "bad_length"],
    [new Uint8Array([0, 0, 0, 8, 9]), "unknown_code"],
    [new Uint8Array([0, 0, 0, 8, 4, 0xd2, 0x17]), "unknown_code"],
  ] as [Uint8Array, string][])("%#: invalid %s", (input, code) => {
    expect<object>(parsePostgresPrelude(input)).toEqual({ kind: "invalid", code });
  });

  test("ErrorResponse is a well-formed FATAL 08P01 message asking for sslmode=require", () => {
    const message = TLS_REQUIRED_ERROR;
    expect(String.fromCharCode(message[0] as number)).toBe("E");
    const length = new DataView(message.buffer, message.byteOffset).getUint32(1);
    expect(length).toBe(message.length - 1);
    const fields = new TextDecoder().decode(message.subarray(5, message.length - 2)).split("\0");
    expect(fields).toContain("SFATAL");
    expect(fields).toContain("C08P01");
    expect(fields.find((f) => f.startsWith("M"))).toContain("sslmode=require");
    expect(message[message.length - 1]).toBe(0);
  });
});

// What a refused connection's summary line says: one whole sentence per parser code, for operators reading the log.
import type { PostgresError } from "../protocol/postgres.ts";
import type { ProxyV1Error } from "../protocol/proxy-v1.ts";
import type { ProxyV2Error } from "../protocol/proxy-v2.ts";
import type { TlsError } from "../protocol/tls.ts";

export const TOO_MANY_IN_TOTAL = "too many connections in total (--max-connections)";
export const TOO_MANY_FROM_ADDRESS = "too many connections from this address (--max-conns-per-ip)";
export const TOO_MANY_FROM_SOURCE = "too many connections from the client the PROXY header names (--max-conns-per-ip)";

/** What the bytes at each point of the prelude may be, for a byte that fits none of it. */
const EXPECTED_AT: Record<"first" | "afterProxy" | "afterGssenc" | "afterSslRequest", string> = {
  first: "first byte %s is not TLS, PostgreSQL or PROXY",
  afterProxy: "byte %s after the PROXY header is not TLS or PostgreSQL",
  afterGssenc: "byte %s after the GSSENCRequest is not a PostgreSQL request",
  afterSslRequest: "byte %s after the SSLRequest is not a TLS record",
};

export function unexpectedByte(phase: keyof typeof EXPECTED_AT, byte: number): string {
  return EXPECTED_AT[phase].replace("%s", `0x${byte.toString(16).padStart(2, "0")}`);
}

const PROXY_V1: Record<ProxyV1Error, string> = {
  bad_prefix: "does not start with \"PROXY \"",
  bad_character: "holds a character the spec does not allow",
  bad_fields: "does not have the fields the spec requires, one space apart",
  bad_protocol: "names a protocol other than TCP4, TCP6 or UNKNOWN",
  bad_address: "has an address that is not a plain address of its protocol",
  bad_port: "has a port that is not 0-65535 without leading zeros",
  too_long: "is longer than 107 bytes",
};

const PROXY_V2: Record<ProxyV2Error, string> = {
  bad_signature: "does not start with the v2 signature",
  bad_version: "is not version 2",
  bad_command: "has a command other than LOCAL or PROXY",
  bad_family: "has an unknown address family or transport",
  too_long: "is longer than 4096 bytes after its fixed part",
  short_addresses: "is too short for the addresses of its family",
  bad_tlv: "has a malformed TLV",
};

export function badProxyHeader(version: 1 | 2, code: string): string {
  const table: Record<string, string> = version === 1 ? PROXY_V1 : PROXY_V2;
  return `PROXY v${version} header ${table[code] ?? code}`;
}

const POSTGRES: Record<PostgresError, string> = {
  bad_length: "PostgreSQL request with a length its code does not have",
  unknown_code: "PostgreSQL request with an unknown code",
};

export function badPostgres(code: PostgresError): string {
  return POSTGRES[code];
}

const TLS: Record<TlsError, string> = {
  not_handshake: "TLS record is not a handshake record",
  bad_version: "TLS record version is not 3.x",
  record_too_long: "TLS record is longer than 2^14 + 2048 bytes",
  empty_record: "TLS record is empty",
  too_many_records: "ClientHello is spread over more than 512 records",
  not_client_hello: "first TLS handshake message is not a ClientHello",
  hello_too_long: "ClientHello is longer than 64 KiB",
  malformed_hello: "ClientHello is malformed",
  malformed_extension: "ClientHello has a malformed extension",
  duplicate_extension: "ClientHello repeats an extension",
  duplicate_server_name: "ClientHello names two hosts in server_name",
};

export function badTls(code: TlsError): string {
  return TLS[code];
}

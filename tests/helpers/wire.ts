// Protocol bytes written out from the specs, so tests never compare against constants of the code under test.

/** TLS fatal alert unrecognized_name (112): record type 21, version 3.3, length 2, level fatal (2) — RFC 8446 §6, RFC 6066 §3. */
export const ALERT_UNRECOGNIZED_NAME = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];
/** TLS fatal alert internal_error (80) — RFC 8446 §6. */
export const ALERT_INTERNAL_ERROR = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];
/** PostgreSQL SSLRequest: length 8, code 80877103 (1234 << 16 | 5679). */
export const SSL_REQUEST = new Uint8Array([0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f]);
/** The PROXY protocol v2 signature (spec §2.2). */
export const PROXY_V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** A PostgreSQL CancelRequest: length 16, code 80877102 (1234 << 16 | 5678), backend process id, secret key. */
export function cancelRequest(pid: number, key: number): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 16);
  view.setUint32(4, 80877102);
  view.setUint32(8, pid);
  view.setUint32(12, key);
  return bytes;
}

/**
 * The PostgreSQL ErrorResponse a plaintext client gets (protocol §55.7): 'E', an Int32 length counting itself, then
 * the fields Severity (S and V) FATAL, SQLSTATE (C) 08P01 protocol_violation and the message (M), each a type byte and
 * a NUL-terminated string, and a final NUL.
 */
export const TLS_REQUIRED_ERROR: number[] = (() => {
  const text = "this endpoint routes by TLS SNI: connect with TLS and a host name (sslmode=require or stronger)";
  const fields = [..."SFATAL\0VFATAL\0C08P01\0M" + text + "\0\0"].map((c) => c.charCodeAt(0));
  const length = 4 + fields.length;
  return [0x45, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff, ...fields];
})();

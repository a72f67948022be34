// Builders for wire inputs (ClientHello, TLS records, PROXY headers, PostgreSQL messages) instead of hex strings.
import { readFileSync } from "node:fs";

export class Writer {
  private readonly parts: number[] = [];

  u8(value: number): this {
    this.parts.push(value & 0xff);
    return this;
  }

  u16(value: number): this {
    return this.u8(value >> 8).u8(value);
  }

  u24(value: number): this {
    return this.u8(value >> 16).u8(value >> 8).u8(value);
  }

  u32(value: number): this {
    return this.u16(value >>> 16).u16(value & 0xffff);
  }

  bytes(data: Uint8Array | string): this {
    for (const byte of typeof data === "string" ? new TextEncoder().encode(data) : data) this.parts.push(byte);
    return this;
  }

  /** Writes `body` preceded by its length in `size` bytes. */
  vector(size: 1 | 2 | 3, body: (w: Writer) => void): this {
    const inner = new Writer();
    body(inner);
    const data = inner.done();
    if (size === 1) this.u8(data.length);
    else if (size === 2) this.u16(data.length);
    else this.u24(data.length);
    return this.bytes(data);
  }

  done(): Uint8Array {
    return new Uint8Array(this.parts);
  }
}

export interface HelloOptions {
  /** host_name entries of server_name; omit for no extension. */
  names?: string[];
  alpn?: string[];
  /** Bytes of a padding extension (type 21). */
  padding?: number;
  sessionId?: number;
  extra?: { type: number; data: Uint8Array }[];
}

/** A ClientHello handshake message (header included). */
export function clientHello(options: HelloOptions = {}): Uint8Array {
  const body = new Writer()
    .u16(0x0303)
    .bytes(new Uint8Array(32).fill(7))
    .vector(1, (w) => w.bytes(new Uint8Array(options.sessionId ?? 32).fill(1)))
    .vector(2, (w) => w.u16(0x1301).u16(0x1302).u16(0xc02f))
    .vector(1, (w) => w.u8(0))
    .vector(2, (w) => {
      if (options.names) {
        w.u16(0).vector(2, (ext) => ext.vector(2, (list) => {
          for (const name of options.names ?? []) list.u8(0).vector(2, (n) => n.bytes(name));
        }));
      }
      if (options.alpn) {
        w.u16(16).vector(2, (ext) => ext.vector(2, (list) => {
          for (const proto of options.alpn ?? []) list.vector(1, (p) => p.bytes(proto));
        }));
      }
      w.u16(43).vector(2, (ext) => ext.vector(1, (v) => v.u16(0x0304)));
      for (const extension of options.extra ?? []) w.u16(extension.type).vector(2, (ext) => ext.bytes(extension.data));
      if (options.padding) w.u16(21).vector(2, (ext) => ext.bytes(new Uint8Array(options.padding ?? 0)));
    })
    .done();
  return new Writer().u8(1).u24(body.length).bytes(body).done();
}

/** Wraps a handshake message in TLS handshake records of at most `recordSize` bytes each. */
export function records(message: Uint8Array, recordSize = 16384, version = 0x0301): Uint8Array {
  const w = new Writer();
  for (let offset = 0; offset < message.length; offset += recordSize) {
    const fragment = message.subarray(offset, Math.min(offset + recordSize, message.length));
    w.u8(22).u16(version).u16(fragment.length).bytes(fragment);
  }
  return w.done();
}

export function proxyV2(options: {
  command?: number;
  family?: number;
  addresses?: Uint8Array;
  tlvs?: { type: number; value: Uint8Array }[];
}): Uint8Array {
  const payload = new Writer().bytes(options.addresses ?? new Uint8Array());
  for (const tlv of options.tlvs ?? []) payload.u8(tlv.type).vector(2, (w) => w.bytes(tlv.value));
  const data = payload.done();
  return new Writer()
    .bytes(new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]))
    .u8(0x20 | (options.command ?? 1))
    .u8(options.family ?? 0x11)
    .u16(data.length)
    .bytes(data)
    .done();
}

/** Bytes from hex text (`"0d 0a 0d 0a"`), for expected values quoted from a spec; spaces are ignored. */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, "");
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`not hex: ${text}`);
  return new Uint8Array(digits.match(/../g)?.map((pair) => parseInt(pair, 16)) ?? []);
}

export function ipv4Addresses(src: number[], dst: number[], sport: number, dport: number): Uint8Array {
  return new Writer().bytes(new Uint8Array(src)).bytes(new Uint8Array(dst)).u16(sport).u16(dport).done();
}

export function startupMessage(params: Record<string, string>): Uint8Array {
  const body = new Writer().u32(196608);
  for (const [key, value] of Object.entries(params)) body.bytes(`${key}\0${value}\0`);
  body.u8(0);
  const data = body.done();
  return new Writer().u32(data.length + 4).bytes(data).done();
}

export function pgRequest(code: number, length = 8): Uint8Array {
  const w = new Writer().u32(length).u32(code);
  for (let i = 8; i < length; i++) w.u8(0);
  return w.done();
}

/** A short random label, so hostnames of one test never meet those of another. */
export function unique(): string {
  return Math.random().toString(36).slice(2, 8);
}

/** Deterministic PRNG (mulberry32) for seeded fuzzing. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${import.meta.dir}/../fixtures/${name}.bin`));
}

// Backends and clients for the real chain, which never half-closes (cloudflared ends both directions when either
// ends): a TLS backend that streams a known amount each way and reports the hash of what it got, and a backend that
// takes a PROXY v2 header before its TLS.
import { CryptoHasher } from "bun";
import { createServer as createNetServer, connect as netConnect, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { testCerts } from "../helpers/certs.ts";
import { tlsClient } from "../helpers/clients.ts";
import { BLOCK, makeBlockSource } from "../helpers/stream.ts";
import { PROXY_V2_SIGNATURE } from "../helpers/wire.ts";

/** The backend's stream is the same block source from this index on, so it never equals what the client sends. */
const BACKEND_FIRST_BLOCK = 1 << 20;
const HASH_HEX = 64;

/** Writes `total` bytes of the block stream from block `first`, honouring backpressure; returns their sha256. */
async function pump(socket: Socket | TLSSocket, total: number, first: number): Promise<string> {
  const block = makeBlockSource();
  const hasher = new CryptoHasher("sha256");
  for (let sent = 0, index = first; sent < total; index++) {
    const chunk = block(index).subarray(0, Math.min(BLOCK, total - sent));
    hasher.update(chunk);
    sent += chunk.length;
    if (!socket.write(chunk)) await drained(socket, `closed after ${sent} of ${total} bytes written`);
  }
  return hasher.digest("hex");
}

function drained(socket: Socket | TLSSocket, whyNot: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      socket.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      socket.off("drain", onDrain);
      reject(new Error(whyNot));
    };
    socket.once("drain", onDrain);
    socket.once("close", onClose);
  });
}

/**
 * The client announces a length (8 bytes, big-endian); then both sides stream that many bytes, and the backend ends
 * with the hex sha256 of what it received. Either side's stream is hashed on both ends.
 */
export function exchangeServer(): Promise<{ port: number; close(): void }> {
  const certs = testCerts();
  const server = createTlsServer({ key: certs.key, cert: certs.cert }, (socket) => {
    socket.on("error", () => socket.destroy());
    let header = Buffer.alloc(0);
    let remaining = -1;
    const hasher = new CryptoHasher("sha256");
    let sending: Promise<string> | null = null;
    socket.on("data", (chunk: Buffer) => {
      if (remaining < 0) {
        header = Buffer.concat([header, chunk]);
        if (header.length < 8) return;
        remaining = Number(header.readBigUInt64BE(0));
        chunk = header.subarray(8);
        sending = pump(socket, remaining, BACKEND_FIRST_BLOCK);
        sending.catch(() => socket.destroy());
      }
      hasher.update(chunk);
      remaining -= chunk.length;
      if (remaining === 0) void sending?.then(() => socket.write(hasher.digest("hex")), () => undefined);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as { port: number }).port, close: () => server.close() })));
}

export interface Exchange {
  readonly sentHash: string;
  /** The backend's hash of what it received. */
  readonly backendGot: string;
  readonly receivedHash: string;
  /** The hash of what the backend sent, computed here. */
  readonly expectedHash: string;
  readonly ms: number;
}

/** One session of `total` bytes each way over TLS with SNI `sni`, through the proxy on `port`. */
export async function exchange(port: number, sni: string, total: number): Promise<Exchange> {
  const started = performance.now();
  const socket = await tlsClient(port, sni);
  const length = Buffer.alloc(8);
  length.writeBigUInt64BE(BigInt(total));
  socket.write(length);
  const received = new CryptoHasher("sha256");
  let got = 0;
  let tail = "";
  const done = new Promise<void>((resolve, reject) => {
    socket.on("data", (chunk: Buffer) => {
      const body = chunk.subarray(0, Math.max(0, total - got));
      received.update(body);
      got += chunk.length;
      tail += chunk.subarray(body.length).toString("latin1");
      if (tail.length >= HASH_HEX) resolve();
    });
    socket.once("close", () => reject(new Error(`closed after ${got} of ${total + HASH_HEX} bytes`)));
  });
  const [sentHash] = await Promise.all([pump(socket, total, 0), done]);
  socket.destroy();
  const expected = new CryptoHasher("sha256");
  const block = makeBlockSource();
  for (let n = 0, index = BACKEND_FIRST_BLOCK; n < total; index++, n += BLOCK) expected.update(block(index).subarray(0, Math.min(BLOCK, total - n)));
  return { sentHash, backendGot: tail, receivedHash: received.digest("hex"), expectedHash: expected.digest("hex"), ms: performance.now() - started };
}

/**
 * Takes a PROXY v2 header (TCP over IPv4), records its source, then relays the rest to an HTTPS server that answers
 * every request with the source of the header its connection came with.
 */
export async function proxiedHttpsBackend(): Promise<{ port: number; sources: string[]; close(): void }> {
  const sources: string[] = [];
  const https = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { key: testCerts().key, cert: testCerts().cert },
    fetch: () => new Response(`PROXY source ${sources.at(-1)}\n`),
  });
  const relay: NetServer = createNetServer((socket) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 16) return;
      if (!buffered.subarray(0, 12).equals(Buffer.from(PROXY_V2_SIGNATURE)) || buffered[13] !== 0x11) return void socket.destroy();
      const end = 16 + buffered.readUInt16BE(14);
      if (buffered.length < end) return;
      socket.off("data", onData);
      sources.push(`${[...buffered.subarray(16, 20)].join(".")}:${buffered.readUInt16BE(24)}`);
      const inner = netConnect({ host: "127.0.0.1", port: https.port as number });
      inner.write(buffered.subarray(end));
      socket.pipe(inner).pipe(socket);
      const close = () => { socket.destroy(); inner.destroy(); };
      socket.on("error", close);
      inner.on("error", close);
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return {
    port: (relay.address() as { port: number }).port,
    sources,
    close() {
      relay.close();
      https.stop(true);
    },
  };
}

// Clients for end-to-end tests: a verifying TLS client, raw sockets, and helpers to read until close.
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { connect as netConnect, type Socket } from "node:net";
import { testCerts } from "./certs.ts";

export function tlsClient(port: number, servername: string, options: { alpn?: string[]; socket?: Socket } = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port,
      servername,
      ca: testCerts().ca,
      ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
      ...(options.socket ? { socket: options.socket } : {}),
    });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Writes `payload` and resolves with the first `payload.length` bytes that come back. */
export function echoRoundTrip(socket: Socket | TLSSocket, payload: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      parts.push(chunk);
      received += chunk.length;
      if (received >= payload.length) {
        socket.off("data", onData);
        resolve(Buffer.concat(parts));
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(payload);
  });
}

export function rawConnect(port: number, localAddress?: string, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, ...(localAddress ? { localAddress } : {}) });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything the peer sends until it closes. */
export function readUntilClose(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => parts.push(chunk));
    socket.once("close", () => resolve(Buffer.concat(parts)));
    socket.once("error", () => undefined);
  });
}

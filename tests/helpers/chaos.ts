// Chaos clients for the soak run: one connection each, behaving well or badly, against tunnels that the
// fake cloudflared makes crash, fail, start slowly, ask for a login or hang (FAKE_CF_BY_NAME, chosen by hostname).
import type { Socket } from "bun";
import { clientHello, records } from "./builders.ts";
import { ALERT_INTERNAL_ERROR, SSL_REQUEST, cancelRequest } from "./wire.ts";

/** Tunnel behaviours by hostname prefix (tests/fake-cloudflared.ts); `db` tunnels work. */
export const KINDS = ["db", "db", "db", "db", "crash", "slow", "fail", "login", "hang", "usage"] as const;
export const CLIENTS = [
  "normal", "normal", "normal", "halfClose", "slowReader", "resetMidHello", "resetMidStream", "postgres", "garbage",
  "vanishWhileStarting", "cancel", "silent",
] as const;
export type ClientKind = (typeof CLIENTS)[number];

export interface ClientResult {
  readonly kind: ClientKind;
  readonly hostname: string;
  /** Set when the proxy did something no input justifies (a wrong byte, a connection never closed). */
  readonly violation?: string;
}

const DEADLINE_MS = 20_000;

/** The payload a client sends after its hello, and expects back byte for byte from an echo tunnel. */
function payload(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
  return bytes;
}

/**
 * Runs one client. What the proxy may legitimately do depends on the tunnel (a crashing one may cut the echo short),
 * but it must never send a byte that was not echoed, and it must always close the connection in the end.
 */
export function runClient(port: number, kind: ClientKind, hostname: string, seed: number, random: () => number): Promise<ClientResult> {
  const works = hostname.startsWith("db-");
  const hello = records(clientHello({ names: [hostname] }));
  const body = payload(kind === "slowReader" ? 256 * 1024 : 1 + Math.floor(random() * 20_000), seed);
  const first: Uint8Array =
    kind === "postgres" ? SSL_REQUEST :
    kind === "garbage" ? payload(1 + Math.floor(random() * 200), seed ^ 0x55).map((b, i) => (i === 0 ? 0x47 : b)) :
    kind === "cancel" ? cancelRequest(seed, seed * 7) :
    kind === "resetMidHello" ? hello.subarray(0, 1 + Math.floor(random() * (hello.length - 1))) :
    kind === "silent" ? new Uint8Array() :
    new Uint8Array([...hello, ...body]);
  const expectEcho = ["normal", "halfClose", "slowReader", "resetMidStream"].includes(kind);
  return new Promise((resolve) => {
    let received = 0;
    let violation: string | undefined;
    let settled = false;
    const done = (socket?: Socket<undefined>) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      // A half-closing client sent FIN before the tunnel may have been ready: such a client has left (received 0).
      const leftEarly = kind === "halfClose" && received === 0;
      if (violation === undefined && expectEcho && works && kind !== "resetMidStream" && !leftEarly && received !== first.length) {
        violation = `echo through a working tunnel ended after ${received} of ${first.length} bytes`;
      }
      socket?.terminate();
      resolve({ kind, hostname, ...(violation === undefined ? {} : { violation }) });
    };
    const deadline = setTimeout(() => {
      violation = `connection still open after ${DEADLINE_MS} ms`;
      done(current);
    }, DEADLINE_MS);
    let current: Socket<undefined> | undefined;
    let offset = 0;
    const pump = (socket: Socket<undefined>) => {
      while (offset < first.length) {
        const written = socket.write(first.subarray(offset));
        if (written <= 0) return;
        offset += written;
      }
      if (kind === "halfClose") socket.shutdown();
      if (kind === "resetMidHello" || kind === "vanishWhileStarting") socket.terminate();
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      allowHalfOpen: kind === "halfClose",
      socket: {
        binaryType: "uint8array",
        open(socket) {
          current = socket;
          pump(socket);
        },
        drain: pump,
        data(socket, chunk) {
          if (kind === "postgres" && received === 0 && chunk[0] === 0x53) {
            received = 1;
            socket.write(new Uint8Array([...hello, ...body]));
            return;
          }
          const refused = received === 0 && chunk.length === ALERT_INTERNAL_ERROR.length && ALERT_INTERNAL_ERROR.every((b, i) => chunk[i] === b);
          if (refused && !works) {
            received = -1;
            return;
          }
          if (expectEcho) {
            for (let i = 0; i < chunk.length && violation === undefined; i++) {
              if (chunk[i] !== first[received + i]) violation = `byte ${received + i} differs from what was sent`;
            }
          } else if (kind !== "postgres") {
            if (chunk[0] !== 0x15 && chunk[0] !== 0x45 && kind !== "silent") violation = `unexpected reply ${chunk[0]} to ${kind}`;
          }
          received += chunk.length;
          if (kind === "slowReader") {
            socket.pause();
            setTimeout(() => socket.resume(), 2);
          }
          if (kind === "resetMidStream" && received > 0) return done(socket);
          if (expectEcho && kind !== "halfClose" && received >= first.length) socket.end();
        },
        close: () => done(),
        connectError: () => done(),
        error: () => undefined,
      },
    }).catch(() => done());
  });
}

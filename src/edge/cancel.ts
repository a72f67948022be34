// Forwarding a plaintext PostgreSQL CancelRequest: to each target tunnel port the message (PROXY header and the 16
// bytes), then FIN; each forward holds a place under --max-connections until it is over, and is over when the
// backend closes it or 5 s after it began, the connect included.
import type { Socket } from "bun";
import { concat } from "../protocol/bytes.ts";

const CANCEL_LINGER_MS = 5000;

/** Places under --max-connections: a forward takes one before it connects and gives it back once it is over. */
export interface Slots {
  take(): boolean;
  give(): void;
}

/** The summary reason when targets were found but no forward could be written. */
export function noForwardReached(ports: number): string {
  return `the cancel reached none of the ${ports} tunnel port(s) it was sent to`;
}

/**
 * Forwards the 16 bytes of a CancelRequest, after `header` (a PROXY header, or null), to each of `ports`; resolves with
 * how many forwards were written in full.
 */
export function forwardCancelRequest(ports: readonly number[], header: Uint8Array | null, request: Uint8Array, slots: Slots): Promise<number> {
  return forwardCancel(ports, header === null ? request : concat([header, request]), slots);
}

/** Resolves with how many forwards were written in full. */
export async function forwardCancel(ports: readonly number[], message: Uint8Array, slots: Slots, lingerMs = CANCEL_LINGER_MS): Promise<number> {
  if (ports.length === 0) return 0;
  const written = await Promise.all(ports.map((port) => forwardOne(port, message, slots, lingerMs)));
  return written.filter(Boolean).length;
}

function forwardOne(port: number, message: Uint8Array, slots: Slots, lingerMs: number): Promise<boolean> {
  if (!slots.take()) return Promise.resolve(false);
  return new Promise((resolve) => {
    let socket: Socket<undefined> | null = null;
    let over = false;
    /** The one end of a forward: its place given back once; a socket that opens later is reset at once. */
    const end = (written: boolean) => {
      resolve(written);
      if (over) return;
      over = true;
      clearTimeout(linger);
      slots.give();
      socket?.terminate();
    };
    const linger = setTimeout(() => end(false), lingerMs);
    const give = (opened: Socket<undefined>) => {
      if (over) return opened.terminate();
      socket = opened;
      if (opened.write(message) !== message.length) return end(false);
      opened.shutdown();
      resolve(true);
    };
    Bun.connect<undefined>({
      hostname: "127.0.0.1",
      port,
      allowHalfOpen: true,
      data: undefined,
      socket: {
        open: give,
        data() {},
        end: (opened) => void opened.end(),
        close: (closed) => {
          if (closed === socket) socket = null;
          end(false);
        },
        connectError: () => end(false),
        error: () => undefined,
      },
    }).catch(() => end(false));
  });
}

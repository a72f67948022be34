// Forwarding a plaintext PostgreSQL CancelRequest (DESIGN §1a): to each target tunnel port the message (PROXY header
// and the 16 bytes), then FIN; each socket is closed when the backend closes it, or after 5 s.
import type { Socket } from "bun";

const CANCEL_LINGER_MS = 5000;

/** Resolves with how many forwards were written in full. */
export async function forwardCancel(ports: readonly number[], message: Uint8Array, lingerMs = CANCEL_LINGER_MS): Promise<number> {
  if (ports.length === 0) return 0;
  const written = await Promise.all(ports.map((port) => forwardOne(port, message, lingerMs)));
  return written.filter(Boolean).length;
}

function forwardOne(port: number, message: Uint8Array, lingerMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let socket: Socket<undefined> | null = null;
    // From the connect on: a tunnel port that never completes the handshake does not hold the cancel either.
    const linger = setTimeout(() => {
      resolve(false);
      socket?.terminate();
    }, lingerMs);
    const give = (socket: Socket<undefined>) => {
      const taken = socket.write(message);
      if (taken !== message.length) {
        resolve(false);
        return socket.terminate();
      }
      socket.shutdown();
      resolve(true);
    };
    Bun.connect<undefined>({
      hostname: "127.0.0.1",
      port,
      allowHalfOpen: true,
      data: undefined,
      socket: {
        open(opened) {
          socket = opened;
          give(opened);
        },
        data() {},
        end: (socket) => void socket.end(),
        close() {
          clearTimeout(linger);
          resolve(false);
        },
        connectError: () => {
          clearTimeout(linger);
          resolve(false);
        },
        error: () => undefined,
      },
    }).catch(() => {
      clearTimeout(linger);
      resolve(false);
    });
  });
}

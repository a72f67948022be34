// The full-duplex pipe between a client and its backend: backpressure, half-close, and how one side's end or close
// ends the other. At most one pending chunk per direction (Bun's write keeps nothing), so memory is bounded by the
// largest read. What a close means for the summary line is decided here too: an ordinary close carries no reason.
import type { Connection } from "./connection.ts";
import type { Side } from "./side.ts";
import { isReset } from "./socket-errors.ts";

function peerOf(connection: Connection, side: Side<Connection>): Side<Connection> {
  return side === connection.client ? connection.backend : connection.client;
}

/** Writes `chunk` from one side to the other; pauses the source while the destination holds unwritten bytes. */
export function forward(connection: Connection, from: Side<Connection>, to: Side<Connection>, chunk: Uint8Array): void {
  if (to.closed) return;
  if (!to.send(chunk)) return writeFailed(connection, to);
  if (to.pending !== null) from.pause();
}

/**
 * `to` refused a write: its peer reset the connection. After that peer's own FIN it is an ordinary close; before, a
 * backend that resets is a backend error and a client that resets has given up on a proxied connection.
 */
function writeFailed(connection: Connection, to: Side<Connection>): void {
  if (to.readEnded) return connection.close("proxied", undefined);
  if (to === connection.backend) return connection.close("backend_error", "write to the backend failed: the tunnel reset the connection");
  connection.close("proxied", "write to the client failed: the client reset the connection with bytes still to receive");
}

/** `side` can take bytes again: flush what it holds, then pass on a half-close or let its source read again. */
export function pipeDrained(connection: Connection, side: Side<Connection>): void {
  if (side.closed) return;
  const from = peerOf(connection, side);
  if (!side.flush()) {
    if (side.pending === null) writeFailed(connection, side);
    return;
  }
  if (from.gone) side.end();
  else if (from.readEnded) side.shutdown();
  else if (connection.state === "piping") from.resume();
}

/**
 * The tunnel went away without a byte from the backend while the client still waits for the server's side of its
 * handshake: cloudflared accepts a connection before it reaches the origin and resets it when it cannot.
 */
function originUnreachable(connection: Connection, side: Side<Connection>): boolean {
  const { client } = connection;
  return side === connection.backend && !connection.answered && !client.readEnded && !client.gone;
}

/** A backend that ends while its client still talks: if its tunnel process turns out to have died, that is why. */
function noteBackendFirst(connection: Connection, side: Side<Connection>): void {
  if (side === connection.backend && !connection.client.readEnded && !connection.client.gone) connection.backendFirst = true;
}

/** Why a side closed with an error, as a sentence: a reset is said as such, anything else with its message. */
function closeReason(side: Side<Connection>, error: Error): string {
  if (isReset(error)) return side.name === "client" ? "the client reset the connection with bytes still to receive" : "the tunnel reset the connection";
  return `${side.name}: ${error.message}`;
}

/** The peer of `side` sent FIN: pass the half-close on once everything it sent is written. */
export function pipeEnded(connection: Connection, side: Side<Connection>): void {
  if (originUnreachable(connection, side)) return connection.originFailed();
  noteBackendFirst(connection, side);
  const other = peerOf(connection, side);
  other.shutdown();
  const { client, backend } = connection;
  if (client.readEnded && backend.readEnded && client.pending === null && backend.pending === null) {
    client.end();
    backend.end();
  }
}

/**
 * `side` closed: the other side ends at once after an error, else once it has written what it holds. An error after
 * the side had finished (its FIN, or ours) is an ordinary close and gives no reason; so is a client's reset with
 * nothing left to give it (curl closing with a TLS record unread resets rather than sends FIN).
 */
export function pipeClosed(connection: Connection, side: Side<Connection>, error: Error | undefined, finishedBefore: boolean): void {
  if (originUnreachable(connection, side)) return connection.originFailed();
  noteBackendFirst(connection, side);
  const other = peerOf(connection, side);
  const ordinary = finishedBefore || (side === connection.client && side.pending === null && isReset(error));
  if (error !== undefined && !ordinary) connection.noteReason(closeReason(side, error));
  if (error !== undefined || other.pending === null) other.end();
}

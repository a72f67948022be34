// The full-duplex pipe between a client and its backend: backpressure, half-close, and how one side's close ends the
// other. At most one pending chunk per direction (DESIGN §6), so memory is bounded by the largest read.
import type { Connection } from "./connection.ts";
import type { Side } from "./side.ts";

function peerOf(connection: Connection, side: Side<Connection>): Side<Connection> {
  return side === connection.client ? connection.backend : connection.client;
}

/** Writes `chunk` from one side to the other; pauses the source while the destination holds unwritten bytes. */
export function forward(connection: Connection, from: Side<Connection>, to: Side<Connection>, chunk: Uint8Array): void {
  if (to.closed) return;
  if (!to.send(chunk)) return connection.close("backend_error", `write to ${to.name} failed`);
  if (to.pending !== null) from.pause();
}

/** `side` can take bytes again: flush what it holds, then pass on a half-close or let its source read again. */
export function pipeDrained(connection: Connection, side: Side<Connection>): void {
  if (side.closed) return;
  const from = peerOf(connection, side);
  if (!side.flush()) {
    if (side.pending === null) connection.close("backend_error", `write to ${side.name} failed`);
    return;
  }
  if (from.gone) side.end();
  else if (from.readEnded) side.shutdown();
  else if (connection.state === "piping") from.resume();
}

/** The peer of `side` sent FIN: pass the half-close on once everything it sent is written. */
export function pipeEnded(connection: Connection, side: Side<Connection>): void {
  const other = peerOf(connection, side);
  other.shutdown();
  const { client, backend } = connection;
  if (client.readEnded && backend.readEnded && client.pending === null && backend.pending === null) {
    client.end();
    backend.end();
  }
}

/** `side` closed: the other side ends at once after an error, else once it has written what it holds. */
export function pipeClosed(connection: Connection, side: Side<Connection>, error?: Error): void {
  const other = peerOf(connection, side);
  if (error !== undefined) connection.noteReason(`${side.name}: ${error.message}`);
  if (error !== undefined || other.pending === null) other.end();
}

// One end of a proxied connection: its socket, the one chunk it could not take yet, and its half-close state.
import type { Socket } from "bun";
import { concat } from "../protocol/bytes.ts";

/**
 * Bun's `write` takes what the kernel accepts and drops the rest, silently, so a Side keeps the unwritten tail and
 * the source is paused until `drain`. At most one pending chunk per direction keeps memory bounded by the largest read.
 */
export class Side<T> {
  socket: Socket<T> | null = null;
  /** Bytes for this side that its socket has not taken yet. */
  pending: Uint8Array | null = null;
  /** The peer of this socket sent FIN (or closed). */
  readEnded = false;
  /** We shut down this socket's write side. */
  shut = false;
  /** No more writes: we ended it or it closed. */
  closed = false;
  /** Its close event arrived. */
  gone = false;
  /** Bytes written to this socket. */
  written = 0;
  /** Reading is paused; kept here so a pause or resume that changes nothing costs no system call. */
  paused = false;

  constructor(readonly name: "client" | "backend") {}

  /** Writes what the socket takes; keeps the rest. Returns false when the socket is gone (write returned -1). */
  send(bytes: Uint8Array): boolean {
    if (this.closed || this.socket === null) return false;
    if (this.pending !== null) {
      this.pending = concat([this.pending, bytes]);
      return true;
    }
    const taken = this.socket.write(bytes);
    if (taken < 0) return false;
    this.written += taken;
    if (taken < bytes.length) this.pending = bytes.subarray(taken);
    return true;
  }

  /** Retries the pending bytes after `drain`; true when nothing is left pending. */
  flush(): boolean {
    const bytes = this.pending;
    if (bytes === null) return true;
    this.pending = null;
    return this.send(bytes) && this.pending === null;
  }

  /** Half-close: our FIN to this side once everything queued for it is written. */
  shutdown(): void {
    if (this.shut || this.closed || this.socket === null || this.pending !== null) return;
    this.shut = true;
    this.socket.shutdown();
  }

  end(): void {
    if (this.closed || this.socket === null) return;
    this.closed = true;
    this.socket.end();
  }

  pause(): void {
    if (this.closed || this.paused || this.socket === null) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (this.closed || !this.paused || this.socket === null) return;
    this.paused = false;
    this.socket.resume();
  }
}

// A connection's lifecycle states and the legal moves between them; Connection.to() is the one place that applies them.
export type ConnectionState =
  | "admitting" // another thread decides on --max-conns-per-ip; the client is paused
  | "prelude" // PROXY header, PostgreSQL prelude, ClientHello
  | "acquiring" // waiting for the tunnel; the client is paused
  | "connecting" // Bun.connect to the tunnel port in flight
  | "awaitingSslAnswer" // the SSLRequest was replayed; the backend's S is due
  | "piping"
  | "cancelling" // a plaintext CancelRequest is being forwarded
  | "closing" // the outcome is decided; waiting for the sockets to close
  | "finished"; // everything given back and reported

export const NEXT: Record<ConnectionState, readonly ConnectionState[]> = {
  admitting: ["prelude", "closing"],
  prelude: ["admitting", "acquiring", "cancelling", "closing"],
  acquiring: ["connecting", "closing"],
  connecting: ["awaitingSslAnswer", "piping", "closing"],
  awaitingSslAnswer: ["piping", "closing"],
  piping: ["closing"],
  cancelling: ["closing"],
  closing: ["finished"],
  finished: [],
};

/** States in which the client has sent its ClientHello and waits for the backend's side of the handshake. */
export const MID_HANDSHAKE: readonly ConnectionState[] = ["acquiring", "connecting", "awaitingSslAnswer"];

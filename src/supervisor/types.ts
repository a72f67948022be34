// The supervisor's seams: tunnels as the pipeline sees them, and the clock, spawner and port probe it is built from.
export type TunnelState = "starting" | "ready" | "idle" | "stopping" | "stopped" | "failed";

export interface TunnelLease {
  readonly port: number;
  /** Call once when the connection closes. */
  release(): void;
}

/** Whoever holds a lease: told when the tunnel is torn down under it (a login prompt, too many crashes). */
export interface LeaseHolder {
  onTunnelLost(): void;
}

export interface TunnelProvider {
  /** A ready local port for `hostname`. */
  acquire(hostname: string, holder: LeaseHolder): Promise<TunnelLease>;
  /** The same, synchronously, when the tunnel is already running: the common warm path skips a promise. */
  tryAcquire(hostname: string, holder: LeaseHolder): TunnelLease | null;
}

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  after(ms: number, callback: () => void): Timer;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface ChildHandle {
  readonly pid: number;
  readonly exited: Promise<ChildExit>;
  kill(signal: "SIGTERM" | "SIGKILL"): void;
}

export interface Spawner {
  /** Starts `argv`; every output line goes to `onLine`. Throws a ProxyError (`spawn_failed`) when it cannot start. */
  spawn(argv: readonly string[], onLine: (line: string) => void): ChildHandle;
}

export interface PortProbe {
  /** Is something listening on 127.0.0.1:`port`? */
  isListening(port: number): Promise<boolean>;
  /** Would a bind to 127.0.0.1:`port` fail right now, because another program holds the port? */
  isHeld(port: number): boolean;
}

export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  after(ms, callback) {
    const handle = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

// The supervisor's seams: tunnels as the pipeline sees them, and the spawner and port probe it is built from.
export type TunnelState = "starting" | "ready" | "idle" | "stopping" | "stopped" | "failed";

export interface TunnelLease {
  readonly port: number;
  /** Call once when the connection closes. */
  release(): void;
}

/** Whoever holds a lease: told when the tunnel is torn down under it (a login prompt, too many crashes, an admin stop). */
export interface LeaseHolder {
  onTunnelLost(reason: string): void;
}

/** A tunnel as /tunnels and /tunnels/{hostname} show it. */
export interface TunnelInfo {
  readonly hostname: string;
  readonly port: number | null;
  readonly pid: number | null;
  readonly state: TunnelState;
  readonly pinned: boolean;
  readonly connections: number;
  readonly started_at: string | null;
  readonly last_used: string;
  readonly restarts: number;
  readonly last_error: string | null;
}

export interface TunnelProvider {
  /** A ready local port for `hostname`. */
  acquire(hostname: string, holder: LeaseHolder): Promise<TunnelLease>;
  /** The same, synchronously, when the tunnel is already running: the common warm path skips a promise. */
  tryAcquire(hostname: string, holder: LeaseHolder): TunnelLease | null;
  /** The port of `hostname` if its process runs and listens now; never starts, restarts or keeps a tunnel alive. */
  runningPort(hostname: string): number | null;
}

export type StartResult = { readonly kind: "ready" | "pinned_in_cooldown"; readonly info: TunnelInfo };

/** Tunnel control by hand (the admin server's POST and DELETE /tunnels/{hostname}, and --warm). */
export interface TunnelControl {
  /** The tunnel's object, or null when there is no such tunnel now. */
  info(hostname: string): TunnelInfo | null;
  /**
   * Starts `hostname` (or joins the start in progress) and resolves once it listens; rejects with the ProxyError when
   * the start fails (cooldown and capacity included). `pin` true keeps it running until stopped by hand; false unpins
   * it (it then stops once idle). Pinning a tunnel in its cooldown resolves at once: it is retried when that ends.
   */
  start(hostname: string, options?: { readonly pin?: boolean }): Promise<StartResult>;
  /**
   * Unpins and stops `hostname`, resolving once its process has exited. "in_use" while it carries connections, unless
   * `force`, which closes them first; "unknown" when there is no such tunnel.
   */
  stop(hostname: string, options?: { readonly force?: boolean }): Promise<"stopped" | "unknown" | "in_use">;
}

/**
 * What the supervisor tells the edges. Worker threads cache ready tunnels and lease them without asking: the supervisor
 * offers a tunnel once it listens and withdraws it before deciding to stop it, so its decision always wins. And a
 * tunnel process that exits unasked is announced, so connections it carried are reported as failed by it.
 */
export interface EdgeNotices {
  /** `hostname` listens on `port`: caches may lease it directly from now on. */
  offer(hostname: string, port: number): void;
  /** Caches stop leasing `hostname`; resolves once each has, and every lease it made before has reached the supervisor. */
  withdraw(hostname: string): Promise<void>;
  /** `hostname`'s process exited without being asked to (`reason`: its exit status). */
  exited(hostname: string, reason: string): void;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface ChildHandle {
  readonly pid: number;
  /** Settles when the process itself has exited, whoever still holds its output pipes. */
  readonly exited: Promise<ChildExit>;
  /** Signals the process and everything it started (its process group); nothing once it has exited. */
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

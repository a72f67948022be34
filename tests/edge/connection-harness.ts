// Drives one Connection directly: fake sockets that behave like Bun's (as measured: end/terminate close synchronously,
// write reports what it took), a tunnel provider and a backend connect that the test settles by hand.
import type { Socket } from "bun";
import { Connection } from "../../src/edge/connection.ts";
import type { EdgeContext } from "../../src/edge/context.ts";
import { createLogger } from "../../src/ops/log.ts";
import { Metrics, type Outcome } from "../../src/ops/metrics.ts";
import type { TunnelLease } from "../../src/supervisor/types.ts";

export class FakeSocket {
  readonly written: number[] = [];
  closed = false;
  shut = false;
  paused = false;
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 40000;
  readonly localAddress = "127.0.0.1";
  readonly localPort = 19000;

  /** Bytes the next writes may still take (the kernel's send buffer); Infinity: all of them. */
  room = Number.POSITIVE_INFINITY;

  constructor(private readonly onClosed: (socket: FakeSocket) => void) {}

  write(bytes: Uint8Array): number {
    if (this.closed || this.shut) return -1;
    const taken = Math.min(bytes.length, this.room);
    this.room -= taken;
    for (let i = 0; i < taken; i++) this.written.push(bytes[i] as number);
    return taken;
  }

  end(): void {
    this.close();
  }

  terminate(): void {
    this.close();
  }

  shutdown(): void {
    this.shut = true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** The socket goes away (our end, or the peer's reset); Bun calls the close handler synchronously. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed(this);
  }

  asSocket(): Socket<Connection> {
    return this as unknown as Socket<Connection>;
  }
}

export interface Harness {
  readonly connection: Connection;
  readonly client: FakeSocket;
  backend: FakeSocket | null;
  readonly finished: { outcome: Outcome; summary: { reason: string | undefined } }[];
  /** Resolves when the connection first reports it has finished. */
  readonly whenFinished: Promise<void>;
  readonly logs: string[];
  /** Addresses the connection was re-keyed to (cancel affinity, limit counts). */
  readonly rekeyed: string[];
  /** Leases handed out and how often each was released. */
  readonly leases: { port: number; releases: number }[];
  /** The acquire in progress (cold tunnel), settled by the test; null once settled. */
  acquire: { resolve: (lease: TunnelLease) => void; reject: (error: Error) => void } | null;
  /** Ports the connection asked to connect to and has not heard back about. */
  connecting: number[];
  lease(port: number): TunnelLease;
  backendOpens(): FakeSocket;
}

export interface HarnessOptions {
  readonly warm?: boolean;
  readonly sendProxy?: "off" | "v1" | "v2";
  /** What the per-address limit says about the client a trusted peer's prelude settles on (a promise: another thread decides). */
  readonly admitVerdict?: boolean | Promise<boolean>;
  readonly trusted?: boolean;
  readonly helloTimeoutMs?: number;
}

export function harness(options: HarnessOptions = {}): Harness {
  const metrics = new Metrics();
  let finishedNow!: () => void;
  const whenFinished = new Promise<void>((resolve) => (finishedNow = resolve));
  const logs: string[] = [];
  const h = {
    finished: [],
    whenFinished,
    logs,
    rekeyed: [],
    leases: [],
    acquire: null,
    connecting: [],
    backend: null,
    lease(port: number): TunnelLease {
      const record = { port, releases: 0 };
      h.leases.push(record);
      return { port, release: () => void record.releases++ };
    },
    backendOpens(): FakeSocket {
      const socket = new FakeSocket((s) => h.connection.onClose(h.connection.backend, s.asSocket()));
      h.connecting.shift();
      h.backend = socket;
      h.connection.onBackendOpen(socket.asSocket());
      return socket;
    },
  } as unknown as Harness & { connection: Connection; client: FakeSocket };
  const ctx: EdgeContext = {
    config: {
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      onNoSni: "reject",
      allowSniSuffix: [],
      hostnameTemplate: "cft-{sni}",
      sendProxy: options.sendProxy ?? "off",
      proxyReplay: true,
      cancelFanout: 4,
    },
    tunnels: {
      tryAcquire: () => (options.warm ? h.lease(20000) : null),
      acquire: () =>
        new Promise((resolve, reject) => {
          const settled = () => (h.acquire = null);
          h.acquire = { resolve: (lease) => (settled(), resolve(lease)), reject: (error) => (settled(), reject(error)) };
        }),
      runningPort: () => null,
    },
    log: createLogger({ format: "json", level: "debug", write: (line) => logs.push(line) }),
    metrics,
    isTrusted: () => options.trusted ?? false,
    admit: () => options.admitVerdict ?? true,
    rekey: (_connection, address) => void h.rekeyed.push(address),
    connectBackend: (port) => void h.connecting.push(port),
    proxied: () => undefined,
    routeCancel: async () => ({ kind: "targets", ports: [], relayed: false }),
    forwardSlots: { take: () => true, give: () => undefined },
    finished: (_connection, outcome, reason) => {
      h.finished.push({ outcome, summary: { reason } });
      finishedNow();
    },
  };
  const connection = new Connection(ctx, "127.0.0.1", "prelude");
  const client = new FakeSocket((s) => connection.onClose(connection.client, s.asSocket()));
  Object.assign(h, { connection, client });
  connection.start(client.asSocket(), null, options.trusted ?? false);
  return h;
}

// A Supervisor on the fake clock, spawner, probe and lease caches, with helpers the supervisor tests share.
import { Supervisor, type SupervisorOptions } from "../../src/supervisor/supervisor.ts";
import { PortPool } from "../../src/supervisor/port-pool.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import { createLogger } from "../../src/ops/log.ts";
import { isProxyError, type ErrorCode } from "../../src/errors.ts";
import type { EdgeNotices, LeaseHolder } from "../../src/supervisor/types.ts";
import { FakeClock, FakeProbe, FakeSpawner } from "./fakes.ts";

/** Lease caches whose withdrawals the test can hold open and release by hand, to stage the worker race. */
export class FakeCaches implements EdgeNotices {
  readonly offers: [string, number][] = [];
  readonly withdrawals: string[] = [];
  /** When true, withdraw() stays pending until finishWithdrawals(). */
  holdWithdrawals = false;
  private readonly pending: (() => void)[] = [];

  offer(hostname: string, port: number): void {
    this.offers.push([hostname, port]);
  }

  withdraw(hostname: string): Promise<void> {
    this.withdrawals.push(hostname);
    if (!this.holdWithdrawals) return Promise.resolve();
    return new Promise((resolve) => this.pending.push(resolve));
  }

  readonly exits: [string, string][] = [];

  exited(hostname: string, reason: string): void {
    this.exits.push([hostname, reason]);
  }

  finishWithdrawals(): void {
    for (const resolve of this.pending.splice(0)) resolve();
  }
}

export type Harness = ReturnType<typeof setup>;

export function setup(options: Partial<SupervisorOptions> = {}, range: [number, number] = [20000, 20009]) {
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const probe = new FakeProbe();
  const pool = new PortPool(range[0], range[1]);
  const metrics = new Metrics();
  const caches = new FakeCaches();
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ format: "json", level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  // By default a child binds its port 30 ms after it starts, like a quick cloudflared.
  spawner.onSpawn = (child) => {
    clock.after(30, () => child.alive && probe.listening.add(child.port));
    void child.exited.then(() => probe.listening.delete(child.port));
  };
  const supervisor = new Supervisor(
    {
      cloudflaredPath: "/usr/bin/cloudflared",
      cloudflaredArgs: ["--loglevel", "info"],
      idleTimeoutMs: 300_000,
      startupTimeoutMs: 15_000,
      restartBackoffMs: 2000,
      maxRestarts: 3,
      tunnelStartRate: 0,
      evictMinIdleMs: 0,
      maxTunnels: range[1] - range[0] + 1,
      ...options,
    },
    { clock, spawner, probe, pool, log, metrics, caches },
  );
  const lost: string[] = [];
  const holder = (hostname: string): LeaseHolder => ({ onTunnelLost: (reason) => lost.push(`${hostname}: ${reason}`) });
  const acquire = (hostname: string) => supervisor.acquire(hostname, holder(hostname));
  const tryAcquire = (hostname: string) => supervisor.tryAcquire(hostname, holder(hostname));
  /** Acquires and lets the start run to completion on the fake clock. */
  const ready = async (hostname: string) => {
    const lease = acquire(hostname);
    await clock.advance(100);
    return lease;
  };
  const state = (hostname: string) => supervisor.list().find((t) => t.hostname === hostname);
  const logged = (msg: string) => logs.filter((l) => l.msg === msg);
  return { clock, spawner, probe, pool, metrics, caches, logs, supervisor, acquire, tryAcquire, ready, state, lost, logged };
}

/** The ProxyError code a promise rejects with, undefined when it resolves. */
export async function errorCode(promise: Promise<unknown>): Promise<ErrorCode | undefined> {
  try {
    await promise;
  } catch (error) {
    if (isProxyError(error)) return error.code;
    throw error;
  }
  return undefined;
}

/** What a promise has done so far, without waiting for it: for promises that must have settled by now. */
export function observe<T>(promise: Promise<T>): { readonly status: "pending" | "resolved" | "rejected"; readonly value?: T; readonly error?: unknown } {
  const seen: { status: "pending" | "resolved" | "rejected"; value?: T; error?: unknown } = { status: "pending" };
  promise.then(
    (value) => Object.assign(seen, { status: "resolved", value }),
    (error: unknown) => Object.assign(seen, { status: "rejected", error }),
  );
  return seen;
}

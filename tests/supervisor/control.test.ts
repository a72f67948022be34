// Tunnel control by hand: info, start (and join), pin, stop (unforced, forced), warm; the pinned policy.
import { describe, expect, test } from "bun:test";
import { ProxyError } from "../../src/errors.ts";
import { errorCode, observe, setup } from "./harness.ts";
import type { FakeChild } from "./fakes.ts";

const A = "cft-a.example.test";
const B = "cft-b.example.test";

describe("info and start", () => {
  test("info is null for an unknown tunnel; start resolves with the object once it listens", async () => {
    const t = setup();
    expect(t.supervisor.control.info(A)).toBeNull();
    const started = t.supervisor.control.start(A);
    await t.clock.advance(1);
    expect(t.supervisor.control.info(A)).toMatchObject({ hostname: A, state: "starting", pinned: false, port: 20000 });
    await t.clock.advance(100);
    expect(await started).toMatchObject({ kind: "ready", info: { hostname: A, state: "idle", pinned: false, port: 20000, pid: 100, connections: 0 } });
  });

  test("a start joins the one in progress, and the next connection uses it without a second spawn", async () => {
    const t = setup();
    const first = t.acquire(A);
    const started = t.supervisor.control.start(A);
    await t.clock.advance(100);
    expect((await started).info.port).toBe(20000);
    expect((await first).port).toBe(20000);
    expect((await t.acquire(A)).port).toBe(20000);
    expect(t.spawner.children).toHaveLength(1);
  });

  test("a failed start rejects with its error, then with the cooldown; at the cap with none idle, capacity", async () => {
    const t = setup({ maxTunnels: 1 });
    t.spawner.onSpawn = (child) => t.clock.after(5, () => child.exit());
    const failed = errorCode(t.supervisor.control.start(A));
    await t.clock.advance(10);
    expect(await failed).toBe("tunnel_start_failed");
    expect(await errorCode(t.supervisor.control.start(A))).toBe("tunnel_cooldown");
    t.spawner.onSpawn = (child) => t.clock.after(30, () => t.probe.listening.add(child.port));
    await t.ready(B);
    await t.clock.advance(2000);
    expect(await errorCode(t.supervisor.control.start(A))).toBe("tunnel_capacity");
  });
});

describe("pinned tunnels", () => {
  test("are never stopped for idleness nor evicted, and count against --max-tunnels", async () => {
    const t = setup({ maxTunnels: 1, idleTimeoutMs: 1000 });
    const started = t.supervisor.control.start(A, { pin: true });
    await t.clock.advance(100);
    expect((await started).info).toMatchObject({ state: "idle", pinned: true });
    expect(t.supervisor.pinnedCount()).toBe(1);
    expect(t.logged("tunnel pinned")).toEqual([expect.objectContaining({ tunnel: A })]);
    (await t.acquire(A)).release();
    await t.clock.advance(10_000);
    expect(t.spawner.alive).toHaveLength(1);
    expect(await errorCode(t.acquire(B))).toBe("tunnel_capacity");
    expect(t.logged("tunnel stop abandoned")).toEqual([]);
  });

  test("pinning a running idle tunnel cancels its idle timer", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    (await t.ready(A)).release();
    await t.clock.advance(500);
    expect((await t.supervisor.control.start(A, { pin: true })).info).toMatchObject({ pinned: true });
    await t.clock.advance(5000);
    expect(t.spawner.alive).toHaveLength(1);
  });

  test("are restarted with backoff whenever they exit, in use or not", async () => {
    const t = setup();
    void t.supervisor.control.start(A, { pin: true });
    await t.clock.advance(100);
    t.spawner.children[0]?.exit({ code: null, signal: "SIGKILL" });
    await t.clock.advance(1);
    expect(t.supervisor.control.info(A)).toMatchObject({ state: "starting", pinned: true, restarts: 1 });
    await t.clock.advance(2100);
    expect(t.supervisor.control.info(A)).toMatchObject({ state: "idle", port: 20001 });
  });

  test("a failed pinned start is retried after its cooldown, the delay doubling up to 30 s, while it stays pinned", async () => {
    const t = setup();
    const spawnedAt: number[] = [];
    t.spawner.onSpawn = (child) => {
      spawnedAt.push(t.clock.now());
      t.clock.after(5, () => child.exit());
    };
    const start = t.clock.now();
    const failed = errorCode(t.supervisor.control.start(A, { pin: true }));
    await t.clock.advance(10);
    expect(await failed).toBe("tunnel_start_failed");
    await t.clock.advance(200_000);
    const gaps = spawnedAt.slice(1).map((at, i) => at - (spawnedAt[i] as number) - 5);
    expect(spawnedAt[0]).toBe(start);
    expect(gaps.slice(0, 7)).toEqual([2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(t.supervisor.control.info(A)).toMatchObject({ pinned: true });
    const count = t.spawner.children.length;
    expect(await t.supervisor.control.stop(A)).toBe("stopped");
    await t.clock.advance(100_000);
    expect(t.spawner.children).toHaveLength(count);
    expect(t.supervisor.control.info(A)).toBeNull();
  });

  test("warm pins and starts each; a failure is retried by the pinned policy", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => {
      if (child.argv.includes(B) && t.spawner.children.filter((c) => c.argv.includes(B)).length === 1) t.clock.after(5, () => child.exit());
      else t.clock.after(30, () => t.probe.listening.add(child.port));
    };
    t.supervisor.control.warm([A, B]);
    await t.clock.advance(100);
    expect(t.supervisor.control.info(A)).toMatchObject({ state: "idle", pinned: true });
    expect(t.supervisor.control.info(B)).toMatchObject({ state: "failed", pinned: true });
    await t.clock.advance(2100);
    expect(t.supervisor.control.info(B)).toMatchObject({ state: "idle", pinned: true });
    expect(t.supervisor.pinnedCount()).toBe(2);
  });
});

describe("stop", () => {
  test("unknown, in use, and forced: the connections are told 'stopped by admin' before the process stops", async () => {
    const t = setup();
    expect(await t.supervisor.control.stop(A)).toBe("unknown");
    await t.ready(A);
    expect(await t.supervisor.control.stop(A)).toBe("in_use");
    expect(t.spawner.alive).toHaveLength(1);
    expect(await t.supervisor.control.stop(A, { force: true })).toBe("stopped");
    expect(t.lost).toEqual([`${A}: stopped by admin`]);
    expect(t.supervisor.control.info(A)).toBeNull();
    expect(t.spawner.alive).toHaveLength(0);
  });

  test("unpins an idle tunnel and answers once its process has exited", async () => {
    const t = setup();
    void t.supervisor.control.start(A, { pin: true });
    await t.clock.advance(100);
    const child = t.spawner.children[0] as FakeChild;
    child.kill = (signal) => void child.signals.push(signal);
    const stop = observe(t.supervisor.control.stop(A));
    await t.clock.advance(1000);
    expect(stop.status).toBe("pending");
    expect(t.supervisor.control.info(A)).toMatchObject({ state: "stopping", pinned: false });
    expect(t.logged("tunnel unpinned")).toHaveLength(1);
    child.exit({ code: null, signal: "SIGTERM" });
    await t.clock.advance(1);
    expect(stop).toMatchObject({ status: "resolved", value: "stopped" });
  });

  test("a failed tunnel in its cooldown is forgotten and counts as stopped", async () => {
    const t = setup();
    t.spawner.failWith = new ProxyError("spawn_failed", "cloudflared not found");
    expect(await errorCode(t.acquire(A))).toBe("spawn_failed");
    expect(await t.supervisor.control.stop(A)).toBe("stopped");
    expect(t.supervisor.control.info(A)).toBeNull();
    t.spawner.failWith = null;
    expect((await t.ready(A)).port).toBeGreaterThanOrEqual(20000);
  });

  test("a starting tunnel is stopped and the connections waiting for it fail", async () => {
    const t = setup();
    const waiting = errorCode(t.acquire(A));
    await t.clock.advance(10);
    expect(await t.supervisor.control.stop(A)).toBe("stopped");
    expect(await waiting).toBe("tunnel_stopping");
    expect(t.spawner.alive).toHaveLength(0);
    expect(t.logged("tunnel ready")).toHaveLength(0);
  });
});

test("a pinned tunnel back from --max-restarts counts its crashes afresh: one more crash restarts it", async () => {
  const t = setup({ maxRestarts: 1, restartBackoffMs: 1000 });
  void t.supervisor.control.start(A, { pin: true }).catch(() => undefined);
  await t.clock.advance(100);
  for (let crash = 0; crash < 2; crash++) {
    t.spawner.alive[0]?.exit();
    await t.clock.advance(3000);
  }
  await t.clock.advance(5000);
  expect(t.state(A)?.state).toBe("idle");
  t.spawner.alive[0]?.exit();
  await t.clock.advance(1);
  expect(t.state(A)?.state).toBe("starting");
});

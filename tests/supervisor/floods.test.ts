// Start storms and what the supervisor says about them: --tunnel-start-rate, --evict-min-idle, refusals that are no
// failure of the tunnel, and the answers of tunnel control when a start or a stop meets a crash or a cooldown.
import { describe, expect, test } from "bun:test";
import { errorCode, setup } from "./harness.ts";

const name = (i: number) => `cft-h${i}.example.test`;

describe("--tunnel-start-rate", () => {
  test("new tunnels beyond the burst are refused at once, without a process; more are allowed as time passes", async () => {
    const t = setup({ tunnelStartRate: 3 });
    const leases = [0, 1, 2, 3, 4].map((i) => errorCode(t.acquire(name(i))));
    await t.clock.advance(100);
    const results = await Promise.all(leases);
    expect(results.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(results.slice(3)).toEqual(["tunnel_start_rate", "tunnel_start_rate"]);
    expect(t.spawner.children).toHaveLength(3);
    expect(t.state(name(3))).toBeUndefined();
    await t.clock.advance(334);
    expect(await errorCode(t.ready(name(3)))).toBeUndefined();
    expect(t.metrics.tunnelStarts.get("failed")).toBe(0);
  });

  test("with the default of 20, a dozen new hostnames at once all start", async () => {
    const t = setup({ tunnelStartRate: 20 }, [20000, 20019]);
    const leases = Array.from({ length: 12 }, (_, i) => errorCode(t.acquire(name(i))));
    await t.clock.advance(100);
    expect((await Promise.all(leases)).filter((code) => code !== undefined)).toEqual([]);
  });

  test("crash restarts and pinned tunnels are never refused for it", async () => {
    const t = setup({ tunnelStartRate: 1, restartBackoffMs: 100 });
    const lease = await t.ready(name(0));
    const pinned = t.supervisor.control.start(name(1), { pin: true });
    t.spawner.children[0]?.exit();
    await t.clock.advance(200);
    expect((await pinned).info).toMatchObject({ pinned: true, state: "idle" });
    expect(t.state(name(0))).toMatchObject({ state: "ready", restarts: 1 });
    expect(await errorCode(t.acquire(name(2)))).toBe("tunnel_start_rate");
    lease.release();
  });
});

describe("--evict-min-idle", () => {
  test("at the cap, a tunnel used within it is not evicted: the newcomer is refused; an older idle one is", async () => {
    const t = setup({ maxTunnels: 2, evictMinIdleMs: 60_000 });
    (await t.ready(name(0))).release();
    await t.clock.advance(30_000);
    (await t.ready(name(1))).release();
    expect(await errorCode(t.acquire(name(2)))).toBe("tunnel_capacity");
    await t.clock.advance(30_001);
    expect(await errorCode(t.ready(name(2)))).toBeUndefined();
    expect(t.state(name(0))).toBeUndefined();
    expect(t.state(name(1))?.state).toBe("idle");
  });

  test("0 keeps the least recently used idle tunnel evictable at once", async () => {
    const t = setup({ maxTunnels: 1 });
    (await t.ready(name(0))).release();
    expect(await errorCode(t.ready(name(1)))).toBeUndefined();
    expect(t.state(name(0))).toBeUndefined();
  });
});

describe("what is said about it", () => {
  test("a pinned start refused for capacity is no failed start: no process, no tunnel_starts failed, a warning", async () => {
    const t = setup({ maxTunnels: 1 });
    await t.ready(name(0));
    expect(await errorCode(t.supervisor.control.start(name(1), { pin: true }))).toBe("tunnel_capacity");
    expect(t.spawner.children).toHaveLength(1);
    expect(t.metrics.tunnelStarts.get("failed")).toBe(0);
    expect(t.metrics.tunnelFailures.get("start_failed")).toBe(0);
    expect(t.logged("tunnel start failed")).toEqual([]);
    expect(t.logged("pinned tunnel refused; retrying after its cooldown")).toHaveLength(1);
    expect(t.state(name(1))).toMatchObject({ state: "failed", pinned: true });
  });

  test("tunnel_failures_total counts each way into failed", async () => {
    const t = setup({ maxRestarts: 0 });
    t.spawner.onSpawn = (child) => t.clock.after(5, () => child.exit());
    const failed = errorCode(t.acquire(name(0)));
    await t.clock.advance(10);
    expect(await failed).toBe("tunnel_start_failed");
    expect(t.metrics.tunnelFailures.get("start_failed")).toBe(1);
    t.spawner.onSpawn = (child) => t.clock.after(30, () => child.alive && t.probe.listening.add(child.port));
    const lease = await t.ready(name(1));
    t.spawner.children.at(-1)?.emit("A browser window should have opened at the following URL:");
    expect(t.metrics.tunnelFailures.get("login_required")).toBe(1);
    lease.release();
    const busy = await t.ready(name(2));
    t.spawner.children.at(-1)?.exit();
    await t.clock.advance(1);
    expect(t.metrics.tunnelFailures.get("crash_loop")).toBe(1);
    busy.release();
  });

  test("pinning a tunnel in its cooldown pins it and answers so; it starts when the cooldown ends", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => t.clock.after(5, () => child.exit());
    const failed = errorCode(t.acquire(name(0)));
    await t.clock.advance(10);
    expect(await failed).toBe("tunnel_start_failed");
    t.spawner.onSpawn = (child) => t.clock.after(30, () => child.alive && t.probe.listening.add(child.port));
    expect(await t.supervisor.control.start(name(0), { pin: true })).toMatchObject({ kind: "pinned_in_cooldown", info: { state: "failed", pinned: true } });
    expect(await errorCode(t.supervisor.control.start(name(0)))).toBe("tunnel_cooldown");
    await t.clock.advance(2100);
    expect(t.state(name(0))).toMatchObject({ state: "idle", pinned: true });
  });

  test("pin false unpins a running tunnel without stopping it; it then stops once idle", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    const pinned = t.supervisor.control.start(name(0), { pin: true });
    await t.clock.advance(100);
    await pinned;
    expect((await t.supervisor.control.start(name(0), { pin: false })).info).toMatchObject({ pinned: false, state: "idle" });
    expect(t.spawner.alive).toHaveLength(1);
    await t.clock.advance(1100);
    expect(t.state(name(0))).toBeUndefined();
  });

  test("an unforced stop whose idle decision is overtaken by a crash (a restart pending) still stops the tunnel", async () => {
    const t = setup();
    (await t.ready(name(0))).release();
    t.caches.holdWithdrawals = true;
    const stop = t.supervisor.control.stop(name(0));
    await t.clock.advance(1);
    t.spawner.children[0]?.exit();
    await t.clock.advance(1);
    expect(t.state(name(0))?.state).toBe("starting");
    t.caches.finishWithdrawals();
    expect(await stop).toBe("stopped");
    await t.clock.advance(10_000);
    expect(t.state(name(0))).toBeUndefined();
    expect(t.spawner.alive).toHaveLength(0);
  });
});

describe("runningPort: a cancel's view of a tunnel", () => {
  test("null while it starts, its port while it listens, null again while it stops", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    t.spawner.diesOn = ["SIGKILL"];
    const lease = t.acquire(name(0));
    await t.clock.advance(1);
    expect(t.state(name(0))?.state).toBe("starting");
    expect(t.supervisor.runningPort(name(0))).toBeNull();
    await t.clock.advance(100);
    (await lease).release();
    expect(t.supervisor.runningPort(name(0))).toBe(20000);
    await t.clock.advance(1000);
    expect(t.state(name(0))?.state).toBe("stopping");
    expect(t.supervisor.runningPort(name(0))).toBeNull();
  });
});

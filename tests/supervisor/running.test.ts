// Running tunnels on the fake spawner: refcounts and idle stops, crashes and restarts, login prompts, the cap, stopAll.
import { describe, expect, test } from "bun:test";
import { setup, errorCode } from "./harness.ts";
import { settle, type FakeChild } from "./fakes.ts";

describe("refcount and idle", () => {
  test("idle after the last release, stopped after the idle timeout, port returned", async () => {
    const t = setup({ idleTimeoutMs: 60_000 });
    const a = await t.ready("cft-a.example.test");
    const b = await t.acquire("cft-a.example.test");
    a.release();
    a.release();
    expect(t.state("cft-a.example.test")).toMatchObject({ state: "ready", connections: 1 });
    b.release();
    expect(t.state("cft-a.example.test")).toMatchObject({ state: "idle", connections: 0 });
    await t.clock.advance(59_000);
    expect(t.spawner.alive).toHaveLength(1);
    await t.clock.advance(1000);
    expect(t.spawner.children[0]?.signals).toEqual(["SIGTERM"]);
    expect(t.state("cft-a.example.test")).toBeUndefined();
    expect(t.pool.available).toBe(10);
  });

  test("a new connection cancels the idle timer; an active tunnel is never torn down", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    (await t.ready("cft-a.example.test")).release();
    await t.clock.advance(900);
    const held = await t.acquire("cft-a.example.test");
    await t.clock.advance(10_000);
    expect(t.spawner.alive).toHaveLength(1);
    held.release();
    await t.clock.advance(1000);
    expect(t.spawner.alive).toHaveLength(0);
  });

  test("after an idle stop the next connection starts it again", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    (await t.ready("cft-a.example.test")).release();
    await t.clock.advance(1000);
    await t.ready("cft-a.example.test");
    expect(t.spawner.children).toHaveLength(2);
    expect(t.spawner.alive).toHaveLength(1);
  });

  test("a connection arriving while the tunnel stops waits for the exit, then starts a new one", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    t.spawner.diesOn = [];
    (await t.ready("cft-a.example.test")).release();
    await t.clock.advance(1000);
    expect(t.state("cft-a.example.test")?.state).toBe("stopping");
    const next = t.acquire("cft-a.example.test");
    t.spawner.children[0]?.exit({ code: null, signal: "SIGTERM" });
    await t.clock.advance(100);
    await next;
    expect(t.spawner.children).toHaveLength(2);
  });
});

describe("crashes", () => {
  test("a crash while in use restarts after backoff x attempt", async () => {
    const t = setup();
    const lease = await t.ready("cft-a.example.test");
    t.spawner.children[0]?.exit({ code: 2, signal: null });
    await settle();
    expect(t.state("cft-a.example.test")?.state).toBe("starting");
    lease.release();
    await t.clock.advance(1999);
    expect(t.spawner.children).toHaveLength(1);
    await t.clock.advance(100);
    expect(t.spawner.children).toHaveLength(2);
    expect(t.state("cft-a.example.test")).toMatchObject({ state: "idle", restarts: 1 });
    expect(t.metrics.tunnelRestarts.get()).toBe(1);
  });

  test("the second crash in a row waits twice the backoff", async () => {
    const t = setup();
    const first = await t.ready("cft-a.example.test");
    t.spawner.children[0]?.exit({ code: 2, signal: null });
    await t.clock.advance(2000);
    expect(t.spawner.children).toHaveLength(2);
    first.release();
    const second = await t.ready("cft-a.example.test");
    t.spawner.children[1]?.exit({ code: 2, signal: null });
    await t.clock.advance(3999);
    expect(t.spawner.children).toHaveLength(2);
    await t.clock.advance(100);
    expect(t.spawner.children).toHaveLength(3);
    expect(t.logged("tunnel restarting").map((l) => l.delay_ms)).toEqual([2000, 4000]);
    second.release();
  });

  test("connections arriving during a restart join it", async () => {
    const t = setup();
    await t.ready("cft-a.example.test");
    t.spawner.children[0]?.exit();
    await settle();
    const joined = t.acquire("cft-a.example.test");
    await t.clock.advance(2100);
    expect((await joined).port).toBeGreaterThanOrEqual(20000);
    expect(t.spawner.children).toHaveLength(2);
  });

  test("a crash just after the last connection closed still counts as in use", async () => {
    const t = setup();
    (await t.ready("cft-a.example.test")).release();
    await t.clock.advance(500);
    t.spawner.children[0]?.exit();
    await t.clock.advance(2100);
    expect(t.spawner.children).toHaveLength(2);
  });

  test("a crash of an idle tunnel is not restarted", async () => {
    const t = setup();
    (await t.ready("cft-a.example.test")).release();
    await t.clock.advance(5000);
    t.spawner.children[0]?.exit();
    await t.clock.advance(10_000);
    expect(t.spawner.children).toHaveLength(1);
    expect(t.state("cft-a.example.test")).toBeUndefined();
    expect(t.pool.available).toBe(10);
  });

  test("after --max-restarts crashes in a row the tunnel is failed until its cooldown ends", async () => {
    const t = setup({ maxRestarts: 2 });
    const lease = await t.ready("cft-a.example.test");
    for (let i = 1; i <= 2; i++) {
      t.spawner.children[i - 1]?.exit();
      await t.clock.advance(2000 * i + 100);
      expect(t.spawner.children).toHaveLength(i + 1);
    }
    t.spawner.children[2]?.exit();
    await settle();
    expect(t.state("cft-a.example.test")).toMatchObject({ state: "failed", restarts: 2 });
    expect(t.lost).toEqual([expect.stringMatching(/^cft-a.example.test: /)]);
    expect(await errorCode(t.acquire("cft-a.example.test"))).toBe("tunnel_cooldown");
    lease.release();
    await t.clock.advance(2000);
    await t.ready("cft-a.example.test");
    expect(t.spawner.children).toHaveLength(4);
  });

  test("the restart counter resets after a minute of healthy running", async () => {
    const t = setup({ maxRestarts: 1 });
    await t.ready("cft-a.example.test");
    t.spawner.children[0]?.exit();
    await t.clock.advance(2100);
    await t.clock.advance(60_000);
    t.spawner.children[1]?.exit();
    await t.clock.advance(2100);
    expect(t.spawner.children).toHaveLength(3);
    expect(t.state("cft-a.example.test")?.state).not.toBe("failed");
  });
});

describe("login prompt", () => {
  test("after readiness: the tunnel fails, its connections are closed, cooldown applies", async () => {
    const t = setup();
    await t.ready("cft-a.example.test");
    t.spawner.children[0]?.emit("Please open the following URL and log in with your Cloudflare account:");
    await settle();
    expect(t.state("cft-a.example.test")).toMatchObject({ state: "failed" });
    expect(t.state("cft-a.example.test")?.last_error).toContain("TUNNEL_SERVICE_TOKEN_ID");
    expect(t.lost).toEqual([expect.stringMatching(/^cft-a.example.test: /)]);
    expect(t.spawner.children[0]?.signals).toEqual(["SIGTERM"]);
    expect(t.logs.some((l) => l.level === "error" && l.msg === "tunnel needs login")).toBe(true);
    expect(await errorCode(t.acquire("cft-a.example.test"))).toBe("tunnel_cooldown");
  });

  test("during the start: the start fails with tunnel_login_required", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => t.clock.after(5, () => child.emit("https://x/cdn-cgi/access/cli?token=..."));
    const lease = errorCode(t.acquire("cft-a.example.test"));
    await t.clock.advance(10);
    expect(await lease).toBe("tunnel_login_required");
  });

  test("failed to connect to origin keeps the tunnel (the connection it failed counts it)", async () => {
    const t = setup();
    await t.ready("cft-a.example.test");
    t.spawner.children[0]?.emit('ERR failed to connect to origin error="dial tcp: refused"');
    expect(t.metrics.originFailures.get()).toBe(0);
    expect(t.state("cft-a.example.test")?.state).toBe("ready");
  });
});

describe("capacity", () => {
  test("at --max-tunnels the least recently used idle tunnel is evicted", async () => {
    const t = setup({ maxTunnels: 2 });
    (await t.ready("cft-a.example.test")).release();
    await t.clock.advance(10);
    (await t.ready("cft-b.example.test")).release();
    await t.clock.advance(10);
    await t.ready("cft-c.example.test");
    expect(t.state("cft-a.example.test")).toBeUndefined();
    expect(t.state("cft-b.example.test")?.state).toBe("idle");
    expect(t.spawner.alive).toHaveLength(2);
    expect(t.logs.some((l) => l.msg === "tunnel evicted" && l.tunnel === "cft-a.example.test")).toBe(true);
  });

  test("with none idle, a new hostname is refused fast", async () => {
    const t = setup({ maxTunnels: 1 });
    await t.ready("cft-a.example.test");
    expect(await errorCode(t.acquire("cft-b.example.test"))).toBe("tunnel_capacity");
    expect(t.spawner.children).toHaveLength(1);
    expect(t.state("cft-b.example.test")).toBeUndefined();
  });

  test("an exhausted port pool is a clear refusal", async () => {
    const t = setup({}, [20000, 20000]);
    t.probe.busy.add(20000);
    expect(await errorCode(t.acquire("cft-a.example.test"))).toBe("pool_exhausted");
    expect(t.state("cft-a.example.test")).toBeUndefined();
  });
});

describe("stopAll", () => {
  test("SIGTERM to every child, SIGKILL after 5 s for one that ignores it, then nothing runs", async () => {
    const t = setup();
    await t.ready("cft-a.example.test");
    await t.ready("cft-b.example.test");
    t.spawner.diesOn = [];
    const stubborn = t.spawner.children[1] as FakeChild;
    (t.spawner.children[0] as FakeChild).kill = function (signal) {
      this.signals.push(signal);
      this.exit({ code: null, signal });
    };
    stubborn.kill = function (signal) {
      this.signals.push(signal);
      if (signal === "SIGKILL") this.exit({ code: null, signal });
    };
    const stopped = t.supervisor.stopAll();
    await t.clock.advance(4999);
    expect(stubborn.signals).toEqual(["SIGTERM"]);
    await t.clock.advance(1);
    await stopped;
    expect(stubborn.signals).toEqual(["SIGTERM", "SIGKILL"]);
    expect(t.spawner.alive).toHaveLength(0);
    expect(t.supervisor.list()).toEqual([]);
    expect(await errorCode(t.acquire("cft-c.example.test"))).toBe("tunnel_stopping");
  });
});

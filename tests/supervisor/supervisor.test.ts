import { describe, expect, test } from "bun:test";
import { Supervisor, type SupervisorOptions } from "../../src/supervisor/supervisor.ts";
import { PortPool } from "../../src/supervisor/port-pool.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import { createLogger } from "../../src/ops/log.ts";
import { isProxyError, type ErrorCode } from "../../src/errors.ts";
import { FakeClock, FakeProbe, FakeSpawner, settle, type FakeChild } from "./fakes.ts";

function setup(options: Partial<SupervisorOptions> = {}, range: [number, number] = [20000, 20009]) {
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const probe = new FakeProbe();
  const pool = new PortPool(range[0], range[1]);
  const metrics = new Metrics();
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
      maxTunnels: range[1] - range[0] + 1,
      ...options,
    },
    { clock, spawner, probe, pool, log, metrics },
  );
  const lost: string[] = [];
  const acquire = (hostname: string) => supervisor.acquire(hostname, { onTunnelLost: () => lost.push(hostname) });
  /** Acquires and lets the start run to completion on the fake clock. */
  const ready = async (hostname: string) => {
    const lease = acquire(hostname);
    await clock.advance(100);
    return lease;
  };
  const state = (hostname: string) => supervisor.list().find((t) => t.hostname === hostname);
  return { clock, spawner, probe, pool, metrics, logs, supervisor, acquire, ready, state, lost };
}

async function errorCode(promise: Promise<unknown>): Promise<ErrorCode | undefined> {
  try {
    await promise;
  } catch (error) {
    if (isProxyError(error)) return error.code;
    throw error;
  }
  return undefined;
}

describe("start", () => {
  test("spawns cloudflared with the exact argv and hands out the port once it listens", async () => {
    const t = setup();
    const lease = await t.ready("cft-db.example.test");
    expect(t.spawner.children).toHaveLength(1);
    expect(t.spawner.children[0]?.argv).toEqual([
      "/usr/bin/cloudflared", "access", "tcp", "--hostname", "cft-db.example.test", "--url", "127.0.0.1:20000", "--loglevel", "info",
    ]);
    expect(lease.port).toBe(20000);
    expect(t.state("cft-db.example.test")).toMatchObject({ state: "ready", connections: 1, pid: 100, port: 20000 });
    expect(t.metrics.tunnelStarts.get("ok")).toBe(1);
    expect(t.metrics.tunnelStartup.observations).toBe(1);
  });

  test("readiness polls with a backoff from 2 ms up to 50 ms", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => t.clock.after(1000, () => t.probe.listening.add(child.port));
    const lease = t.acquire("cft-slow.example.test");
    await t.clock.advance(1100);
    await lease;
    // 0, 2, 6, 14, 30, 62, 112, then every 50 ms up to 1000 ms: about 25 checks, not hundreds.
    expect(t.probe.checks).toBeGreaterThan(15);
    expect(t.probe.checks).toBeLessThan(35);
  });

  test("the startup line restarts the backoff, so a bind right after it is seen within milliseconds", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => {
      t.clock.after(200, () => child.emit("2026-01-01T00:00:00Z INF Start Websocket listener host=127.0.0.1:20000"));
      t.clock.after(203, () => t.probe.listening.add(child.port));
    };
    const lease = t.acquire("cft-hint.example.test");
    await t.clock.advance(210);
    expect((await lease).port).toBe(20000);
    expect(t.state("cft-hint.example.test")?.state).toBe("ready");
    const ready = t.logs.find((l) => l.msg === "tunnel ready");
    expect(Number(ready?.startup_ms)).toBeLessThanOrEqual(206);
  });

  test("20 concurrent first connections share one start", async () => {
    const t = setup();
    const leases = Array.from({ length: 20 }, () => t.acquire("cft-db.example.test"));
    await t.clock.advance(100);
    const ports = (await Promise.all(leases)).map((l) => l.port);
    expect(new Set(ports)).toEqual(new Set([20000]));
    expect(t.spawner.children).toHaveLength(1);
    expect(t.state("cft-db.example.test")?.connections).toBe(20);
  });

  test("an exit before listening fails fast, even with status 0", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => t.clock.after(5, () => child.exit({ code: 0, signal: null }));
    const lease = errorCode(t.acquire("cft-bad.example.test"));
    await t.clock.advance(10);
    expect(await lease).toBe("tunnel_start_failed");
    expect(t.state("cft-bad.example.test")).toMatchObject({ state: "failed", pid: null, port: null });
    expect(t.state("cft-bad.example.test")?.last_error).toContain("status 0");
    expect(t.pool.available).toBe(10);
    expect(t.metrics.tunnelStarts.get("failed")).toBe(1);
  });

  test.each([
    ["Incorrect Usage: flag provided but not defined: -x", "Incorrect Usage"],
    ["2026-01-01T00:00:00Z ERR Error validating origin URL: bad", "Error validating origin URL"],
  ])("output %p fails the start at once and stops the process", async (line, reason) => {
    const t = setup();
    t.spawner.onSpawn = (child) => t.clock.after(5, () => child.emit(line));
    const lease = errorCode(t.acquire("cft-x.example.test"));
    await t.clock.advance(10);
    expect(await lease).toBe("tunnel_start_failed");
    expect(t.state("cft-x.example.test")?.last_error).toContain(reason);
    expect(t.spawner.children[0]?.signals).toEqual(["SIGTERM"]);
  });

  test("address already in use: one retry on another port", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => {
      if (child.port === 20000) t.clock.after(5, () => (child.emit("ERR listen tcp 127.0.0.1:20000: bind: address already in use"), child.exit()));
      else t.clock.after(30, () => t.probe.listening.add(child.port));
    };
    const lease = t.acquire("cft-x.example.test");
    await t.clock.advance(100);
    expect((await lease).port).toBe(20001);
    expect(t.spawner.children).toHaveLength(2);
  });

  test("address already in use twice fails", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => t.clock.after(5, () => (child.emit("bind: address already in use"), child.exit()));
    const lease = errorCode(t.acquire("cft-x.example.test"));
    await t.clock.advance(100);
    expect(await lease).toBe("tunnel_start_failed");
    expect(t.spawner.children).toHaveLength(2);
    expect(t.pool.available).toBe(10);
  });

  test("ports other programs listen on are skipped", async () => {
    const t = setup();
    t.probe.busy.add(20000);
    expect((await t.ready("cft-a.example.test")).port).toBe(20001);
  });

  test("startup timeout fails the start and kills the process", async () => {
    const t = setup({ startupTimeoutMs: 500 });
    t.spawner.onSpawn = () => undefined;
    t.spawner.diesOn = ["SIGKILL"];
    const lease = errorCode(t.acquire("cft-hang.example.test"));
    await t.clock.advance(500);
    expect(await lease).toBe("tunnel_start_failed");
    expect(t.spawner.children[0]?.signals).toEqual(["SIGTERM"]);
    await t.clock.advance(2000);
    expect(t.spawner.children[0]?.signals).toEqual(["SIGTERM", "SIGKILL"]);
    expect(t.spawner.alive).toHaveLength(0);
    expect(t.pool.available).toBe(10);
  });

  test("a binary that cannot be spawned is a clear error, and the cooldown applies", async () => {
    const t = setup();
    const { ProxyError } = await import("../../src/errors.ts");
    t.spawner.failWith = new ProxyError("spawn_failed", "cannot start tunnel: cloudflared not found");
    expect(await errorCode(t.acquire("cft-a.example.test"))).toBe("spawn_failed");
    expect(await errorCode(t.acquire("cft-a.example.test"))).toBe("tunnel_cooldown");
    expect(t.pool.available).toBe(10);
  });
});

describe("cooldown after a failed start", () => {
  test("connections fail fast in the window, then the next one starts afresh", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => t.clock.after(5, () => child.exit());
    const first = errorCode(t.acquire("cft-x.example.test"));
    await t.clock.advance(10);
    expect(await first).toBe("tunnel_start_failed");
    expect(await errorCode(t.acquire("cft-x.example.test"))).toBe("tunnel_cooldown");
    expect(t.spawner.children).toHaveLength(1);
    await t.clock.advance(2000);
    expect(t.state("cft-x.example.test")).toBeUndefined();
    t.spawner.onSpawn = (child) => t.clock.after(30, () => t.probe.listening.add(child.port));
    expect((await t.ready("cft-x.example.test")).port).toBeGreaterThanOrEqual(20000);
    expect(t.spawner.children).toHaveLength(2);
  });
});

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
    expect(t.lost).toEqual(["cft-a.example.test"]);
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
    expect(t.lost).toEqual(["cft-a.example.test"]);
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

  test("failed to connect to origin is counted, the tunnel kept", async () => {
    const t = setup();
    await t.ready("cft-a.example.test");
    t.spawner.children[0]?.emit('ERR failed to connect to origin error="dial tcp: refused"');
    expect(t.metrics.originFailures.get()).toBe(1);
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
  test("SIGTERM to every child, SIGKILL after 2 s for one that ignores it, then nothing runs", async () => {
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
    await t.clock.advance(2000);
    await stopped;
    expect(stubborn.signals).toEqual(["SIGTERM", "SIGKILL"]);
    expect(t.spawner.alive).toHaveLength(0);
    expect(t.supervisor.list()).toEqual([]);
    expect(await errorCode(t.acquire("cft-c.example.test"))).toBe("tunnel_stopping");
  });
});

// Tunnel starts on the fake spawner: argv, readiness, fail-fast outputs, port retries, timeouts, cooldown.
import { describe, expect, test } from "bun:test";
import { setup, errorCode } from "./harness.ts";

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
    await t.clock.advance(5000);
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

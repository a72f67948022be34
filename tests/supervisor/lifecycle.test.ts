// Lifecycles that cannot leak: slots and ports owned by the process, the transition table, every wait ends.
import { describe, expect, test } from "bun:test";
import { createLogger } from "../../src/ops/log.ts";
import { LEGAL_TRANSITIONS, transition } from "../../src/supervisor/state.ts";
import { Tunnel } from "../../src/supervisor/tunnel.ts";
import type { TunnelState } from "../../src/supervisor/types.ts";
import { errorCode, observe, setup } from "./harness.ts";
import type { FakeChild } from "./fakes.ts";

/** A child that records signals and only exits when the test says so. */
function deaf(child: FakeChild | undefined): FakeChild {
  if (child === undefined) throw new Error("no such child");
  child.kill = (signal) => void child.signals.push(signal);
  return child;
}

describe("slots and ports belong to the process", () => {
  test("a port retry keeps the cap: with --max-tunnels 1 a second hostname starts no second process", async () => {
    const t = setup({ maxTunnels: 1 });
    t.spawner.onSpawn = (child) => {
      if (child.port === 20000) t.clock.after(5, () => (child.emit("ERR bind: address already in use"), child.exit()));
      else t.clock.after(30, () => t.probe.listening.add(child.port));
    };
    expect((await t.ready("cft-a.example.test")).port).toBe(20001);
    const second = errorCode(t.acquire("cft-b.example.test"));
    await t.clock.advance(100);
    expect(await second).toBe("tunnel_capacity");
    expect(t.spawner.children).toHaveLength(2);
    expect(t.spawner.alive).toHaveLength(1);
    expect(t.supervisor.running).toBe(1);
  });

  test("a retry whose first process lingers waits for it at the cap instead of running two", async () => {
    const t = setup({ maxTunnels: 1 });
    t.spawner.diesOn = [];
    t.spawner.onSpawn = (child) => {
      if (child.port === 20000) t.clock.after(5, () => child.emit("ERR bind: address already in use"));
      else t.clock.after(30, () => t.probe.listening.add(child.port));
    };
    const lease = t.acquire("cft-a.example.test");
    await t.clock.advance(10);
    const first = t.spawner.children[0] as FakeChild;
    expect(first.signals).toEqual(["SIGTERM"]);
    await t.clock.advance(1000);
    expect(t.spawner.children).toHaveLength(1);
    first.exit({ code: null, signal: "SIGKILL" });
    await t.clock.advance(100);
    expect((await lease).port).toBe(20001);
    expect(t.spawner.children).toHaveLength(2);
  });

  test("the port and the slot come back when the process has exited, not when it was asked to stop", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    (await t.ready("cft-a.example.test")).release();
    const child = deaf(t.spawner.children[0]);
    await t.clock.advance(1000);
    expect(t.state("cft-a.example.test")?.state).toBe("stopping");
    expect(t.pool.available).toBe(9);
    expect(t.supervisor.running).toBe(1);
    await t.clock.advance(5000);
    expect(child.signals).toEqual(["SIGTERM", "SIGKILL"]);
    child.exit({ code: null, signal: "SIGKILL" });
    await t.clock.advance(1);
    expect(t.pool.available).toBe(10);
    expect(t.supervisor.running).toBe(0);
    expect(t.state("cft-a.example.test")).toBeUndefined();
  });

  test("at the cap a start waits for a stopping process to exit, then takes its slot", async () => {
    const t = setup({ maxTunnels: 1, idleTimeoutMs: 1000 });
    (await t.ready("cft-a.example.test")).release();
    const child = deaf(t.spawner.children[0]);
    await t.clock.advance(1000);
    const second = t.acquire("cft-b.example.test");
    await t.clock.advance(500);
    expect(t.spawner.children).toHaveLength(1);
    child.exit({ code: null, signal: "SIGTERM" });
    await t.clock.advance(100);
    expect((await second).port).toBe(20001);
    expect(t.supervisor.running).toBe(1);
  });
});

describe("every wait ends", () => {
  test("a restart waiting out its backoff when stopAll runs: the connections waiting on it fail", async () => {
    const t = setup();
    await t.ready("cft-a.example.test");
    t.spawner.children[0]?.exit();
    await t.clock.advance(1);
    expect(t.state("cft-a.example.test")?.state).toBe("starting");
    const waiting = observe(errorCode(t.acquire("cft-a.example.test")));
    const stopped = t.supervisor.stopAll();
    await t.clock.advance(10);
    await stopped;
    expect(waiting).toMatchObject({ status: "resolved", value: "tunnel_stopping" });
    expect(t.spawner.children).toHaveLength(1);
  });

  test("a stop that lands while the port comes up wins: the tunnel is not left idle without a process", async () => {
    const t = setup();
    const waiting = observe(errorCode(t.acquire("cft-a.example.test")));
    await t.clock.advance(10);
    const child = deaf(t.spawner.children[0]);
    const stopped = observe(t.supervisor.stopAll());
    await t.clock.advance(100);
    expect(t.probe.listening.has(child.port)).toBe(true);
    expect(waiting).toMatchObject({ status: "resolved", value: "tunnel_stopping" });
    expect(t.state("cft-a.example.test")?.state).toBe("stopping");
    await t.clock.advance(5000);
    child.exit({ code: null, signal: "SIGKILL" });
    await t.clock.advance(1);
    expect(stopped.status).toBe("resolved");
    expect(t.supervisor.list()).toEqual([]);
    expect(t.logged("tunnel ready")).toHaveLength(0);
  });

  test("stopAll resolves within SIGKILL + 1 s even when a process never exits, and says which", async () => {
    const t = setup();
    await t.ready("cft-a.example.test");
    const child = deaf(t.spawner.children[0]);
    const stopped = observe(t.supervisor.stopAll());
    await t.clock.advance(5999);
    expect(stopped.status).toBe("pending");
    await t.clock.advance(1);
    expect(stopped.status).toBe("resolved");
    expect(child.signals).toEqual(["SIGTERM", "SIGKILL"]);
    expect(t.logged("tunnel processes did not exit after SIGKILL")).toEqual([expect.objectContaining({ level: "error", pids: String(child.pid) })]);
  });

  test("a connection arriving while a stuck process stops is refused instead of waiting forever", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    (await t.ready("cft-a.example.test")).release();
    deaf(t.spawner.children[0]);
    await t.clock.advance(1000);
    const waiting = observe(errorCode(t.acquire("cft-a.example.test")));
    await t.clock.advance(6000);
    expect(waiting).toMatchObject({ status: "resolved", value: "tunnel_stopping" });
  });

  test("failed tunnels are forgotten when their cooldown ends, without anyone asking", async () => {
    const t = setup();
    t.spawner.onSpawn = (child) => t.clock.after(5, () => child.exit());
    const starts = ["a", "b", "c"].map((name) => errorCode(t.acquire(`cft-${name}.example.test`)));
    await t.clock.advance(10);
    expect(await Promise.all(starts)).toEqual(["tunnel_start_failed", "tunnel_start_failed", "tunnel_start_failed"]);
    expect(t.supervisor.control.info("cft-a.example.test")?.state).toBe("failed");
    await t.clock.advance(2000);
    for (const name of ["a", "b", "c"]) expect(t.supervisor.control.info(`cft-${name}.example.test`)).toBeNull();
    expect(t.clock.pending).toBe(0);
  });
});

describe("the transition table", () => {
  // Written out here rather than read from the code, so a loosened table fails this test.
  const expected: Record<TunnelState, TunnelState[]> = {
    starting: ["ready", "idle", "failed", "stopping", "stopped"],
    ready: ["idle", "starting", "failed", "stopping", "stopped"],
    idle: ["ready", "starting", "failed", "stopping", "stopped"],
    stopping: ["stopped"],
    failed: ["starting", "stopped"],
    stopped: [],
  };
  const states = Object.keys(expected) as TunnelState[];

  test("legal moves apply; any other is logged as a bug and not applied", () => {
    for (const from of states) {
      for (const to of states) {
        const logs: Record<string, unknown>[] = [];
        const log = createLogger({ format: "json", level: "debug", write: (line) => logs.push(JSON.parse(line)) });
        const tunnel = new Tunnel("cft-a.example.test", 0);
        tunnel.state = from;
        const legal = expected[from].includes(to);
        expect(transition(tunnel, to, log)).toBe(legal);
        expect(tunnel.state).toBe(legal ? to : from);
        expect(logs).toEqual(legal ? [] : [expect.objectContaining({ level: "error", msg: "bug: illegal tunnel transition", from, to, tunnel: "cft-a.example.test" })]);
      }
    }
  });

  test("the table in the code is exactly that one", () => {
    expect(LEGAL_TRANSITIONS).toEqual(expected);
  });
});

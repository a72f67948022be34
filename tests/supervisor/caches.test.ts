// The worker lease caches: offered every leasable tunnel, withdrawn before any stop; a decided stop waits
// for the withdrawal and loses to a lease that lands meanwhile.
import { describe, expect, test } from "bun:test";
import { errorCode, observe, setup, type Harness } from "./harness.ts";

const A = "cft-a.example.test";

/** A tunnel of `t` that has started, been used once and is idle now. */
async function idleTunnel(t: Harness): Promise<void> {
  (await t.ready(A)).release();
  expect(t.state(A)?.state).toBe("idle");
}

describe("offers", () => {
  test("a tunnel is offered once it listens, and again on its new port after a restart", async () => {
    const t = setup();
    const lease = await t.ready(A);
    expect(t.caches.offers).toEqual([[A, 20000]]);
    t.spawner.children[0]?.exit();
    await t.clock.advance(2100);
    expect(t.caches.withdrawals).toEqual([A]);
    expect(t.caches.offers).toEqual([[A, 20000], [A, 20001]]);
    lease.release();
  });
});

describe("a decided stop waits for the withdrawal and loses to a lease that lands meanwhile", () => {
  test("idle timeout: the connection keeps its tunnel, which is offered again", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    await idleTunnel(t);
    t.caches.holdWithdrawals = true;
    await t.clock.advance(1000);
    expect(t.caches.withdrawals).toEqual([A]);
    expect(t.state(A)?.state).toBe("idle");
    const lease = t.tryAcquire(A);
    expect(lease?.port).toBe(20000);
    t.caches.finishWithdrawals();
    await t.clock.advance(1);
    expect(t.state(A)).toMatchObject({ state: "ready", connections: 1 });
    expect(t.spawner.children[0]?.signals).toEqual([]);
    expect(t.lost).toEqual([]);
    expect(t.caches.offers).toEqual([[A, 20000], [A, 20000]]);
    expect(t.logged("tunnel stop abandoned")).toHaveLength(1);
  });

  test("a lease that came and went meanwhile still restarts the idle period", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    await idleTunnel(t);
    t.caches.holdWithdrawals = true;
    await t.clock.advance(1000);
    t.tryAcquire(A)?.release();
    t.caches.finishWithdrawals();
    await t.clock.advance(999);
    expect(t.spawner.alive).toHaveLength(1);
    t.caches.holdWithdrawals = false;
    await t.clock.advance(1);
    expect(t.spawner.alive).toHaveLength(0);
  });

  test("without a lease meanwhile the stop goes ahead once the caches have let go", async () => {
    const t = setup({ idleTimeoutMs: 1000 });
    await idleTunnel(t);
    t.caches.holdWithdrawals = true;
    await t.clock.advance(1000);
    expect(t.spawner.children[0]?.signals).toEqual([]);
    t.caches.finishWithdrawals();
    await t.clock.advance(1);
    expect(t.spawner.children[0]?.signals).toEqual(["SIGTERM"]);
    expect(t.caches.withdrawals).toEqual([A]);
  });

  test("eviction: the victim keeps its new connection and the newcomer is refused", async () => {
    const t = setup({ maxTunnels: 1 });
    await idleTunnel(t);
    t.caches.holdWithdrawals = true;
    const newcomer = observe(errorCode(t.acquire("cft-b.example.test")));
    await t.clock.advance(1);
    expect(t.caches.withdrawals).toEqual([A]);
    const lease = t.tryAcquire(A);
    t.caches.finishWithdrawals();
    await t.clock.advance(1);
    expect(newcomer).toMatchObject({ status: "resolved", value: "tunnel_capacity" });
    expect(lease?.port).toBe(20000);
    expect(t.spawner.children).toHaveLength(1);
    expect(t.spawner.children[0]?.signals).toEqual([]);
  });

  test("unforced admin stop: answered in_use when a lease lands during the withdrawal", async () => {
    const t = setup();
    await idleTunnel(t);
    t.caches.holdWithdrawals = true;
    const stop = observe(t.supervisor.control.stop(A));
    await t.clock.advance(1);
    const lease = t.tryAcquire(A);
    t.caches.finishWithdrawals();
    await t.clock.advance(1);
    expect(stop).toMatchObject({ status: "resolved", value: "in_use" });
    expect(lease?.port).toBe(20000);
    expect(t.state(A)?.state).toBe("ready");
  });
});

describe("stops that do not wait for the caches", () => {
  test("a crash, a login prompt, a forced admin stop and the shutdown go ahead while the withdrawal is pending", async () => {
    const t = setup();
    await t.ready(A);
    await t.ready("cft-b.example.test");
    await t.ready("cft-c.example.test");
    (await t.ready("cft-d.example.test")).release();
    t.caches.holdWithdrawals = true;
    t.spawner.children[0]?.exit();
    t.spawner.children[1]?.emit("Please open the following URL and log in with your Cloudflare account:");
    await t.clock.advance(1);
    expect(t.state(A)?.state).toBe("starting");
    expect(t.state("cft-b.example.test")?.state).toBe("failed");
    expect(await t.supervisor.control.stop("cft-c.example.test", { force: true })).toBe("stopped");
    const stopped = observe(t.supervisor.stopAll());
    await t.clock.advance(1);
    expect(stopped.status).toBe("resolved");
    expect(t.caches.withdrawals.sort()).toEqual([A, "cft-b.example.test", "cft-c.example.test", "cft-d.example.test"]);
    expect(t.spawner.alive).toHaveLength(0);
  });
});

describe("an idle timer that fires while a decided stop still waits for the caches", () => {
  for (const idleTimeoutMs of [1000, 0]) {
    test(`joins that decision, and when it is abandoned the idle period runs again (--idle-timeout ${idleTimeoutMs})`, async () => {
      const t = setup({ idleTimeoutMs });
      await idleTunnel(t);
      t.caches.holdWithdrawals = true;
      await t.clock.advance(idleTimeoutMs + 1);
      t.tryAcquire(A)?.release();
      await t.clock.advance(idleTimeoutMs + 1);
      t.caches.finishWithdrawals();
      t.caches.holdWithdrawals = false;
      await t.clock.advance(idleTimeoutMs * 3 + 10);
      expect(t.spawner.alive).toHaveLength(0);
      expect(t.state(A)).toBeUndefined();
    });
  }
});

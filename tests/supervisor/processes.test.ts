// The supervisor against real processes (the fake cloudflared): SIGKILL escalation, the startup timeout, descendants
// holding the output pipes, and a shutdown that leaves no process behind.
import { afterEach, describe, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isProxyError } from "../../src/errors.ts";
import { fakeEnv, gone, realSupervisor } from "./real.ts";
import { within } from "../helpers/deadline.ts";
import { isAlive } from "../helpers/admin.ts";

const TEST_MS = 20_000;
const tag = () => Math.random().toString(36).slice(2, 8);
let cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A real supervisor whose children see `env`; both are undone after the test. */
function withSupervisor(env: Record<string, string>, options: Parameters<typeof realSupervisor>[0] = {}) {
  const real = realSupervisor(options);
  const restore = fakeEnv({ FAKE_CF_STATE_DIR: real.stateDir, ...env });
  cleanup.push(async () => restore(), () => within(8000, real.supervisor.stopAll(), "stopAll after the test"));
  return real;
}

describe("stopping real processes", () => {
  test("a process that ignores SIGTERM gets SIGKILL after 5 s, and the stop completes", async () => {
    const t = withSupervisor({ FAKE_CF_IGNORE_TERM: "1" });
    const hostname = `cft-term-${tag()}.test`;
    (await within(5000, t.supervisor.acquire(hostname, t.holder), "the tunnel becoming ready")).release();
    const [pid] = t.pidsOf(hostname) as [number];
    const started = performance.now();
    expect(await within(8000, t.supervisor.control.stop(hostname), "the stop of a process that ignores SIGTERM")).toBe("stopped");
    const tookMs = performance.now() - started;
    expect(tookMs).toBeGreaterThan(4900);
    expect(tookMs).toBeLessThan(7500);
    expect(isAlive(pid)).toBe(false);
    expect(t.lines.some((l) => l.msg === "cloudflared" && String(l.line).includes("ignoring SIGTERM"))).toBe(true);
  }, TEST_MS);

  test("a process that never binds fails at the startup timeout and is stopped", async () => {
    const t = withSupervisor({ FAKE_CF_HANG: "1" }, { startupTimeoutMs: 500 });
    const hostname = `cft-hang-${tag()}.test`;
    const started = performance.now();
    const error = await within(3000, t.supervisor.acquire(hostname, t.holder).then(() => null, (e: unknown) => e), "the startup timeout");
    expect(isProxyError(error, "tunnel_start_failed")).toBe(true);
    expect(String((error as Error).message)).toContain("not listening after 500ms");
    expect(performance.now() - started).toBeLessThan(2000);
    const [pid] = t.pidsOf(hostname) as [number];
    await within(3000, gone(pid), "the hung process exiting after its failed start");
    await within(1000, t.waitFor((l) => l.msg === "tunnel stopped" && l.tunnel === hostname), "the 'tunnel stopped' line");
  }, TEST_MS);
});

describe("a descendant holding the output pipes", () => {
  test("the stop completes, and the descendant is gone afterwards", async () => {
    const t = withSupervisor({ FAKE_CF_DESCENDANT: "1" });
    const hostname = `cft-desc-${tag()}.test`;
    (await within(5000, t.supervisor.acquire(hostname, t.holder), "the tunnel becoming ready")).release();
    const [descendant] = t.pidsOf(hostname, "descendant") as [number];
    expect(isAlive(descendant)).toBe(true);
    expect(await within(3000, t.supervisor.control.stop(hostname), "the stop of a tunnel whose descendant holds its pipes")).toBe("stopped");
    await within(1000, gone(descendant), "the descendant ending with its tunnel");
    expect(t.supervisor.control.info(hostname)).toBeNull();
  }, TEST_MS);

  test("a crash is seen as an exit and restarted, and the crashed process's descendant does not outlive it", async () => {
    const once = join(tmpdir(), `ttp-crashed-${tag()}`);
    const t = withSupervisor({ FAKE_CF_DESCENDANT: "1", FAKE_CF_CRASH_AFTER_MS: "300", FAKE_CF_CRASH_ONCE_FILE: once });
    const hostname = `cft-crash-${tag()}.test`;
    const lease = await within(5000, t.supervisor.acquire(hostname, t.holder), "the tunnel becoming ready");
    const [firstDescendant] = t.pidsOf(hostname, "descendant") as [number];
    await within(3000, t.waitFor((l) => l.msg === "tunnel exited unexpectedly" && l.tunnel === hostname), "the crash being seen");
    await within(1000, gone(firstDescendant), "the crashed process's descendant ending");
    await within(5000, t.waitFor((l) => l.msg === "tunnel ready" && l.tunnel === hostname && t.lines.filter((x) => x.msg === "tunnel ready").length === 2), "the restart becoming ready");
    const [first, second] = t.pidsOf(hostname) as [number, number];
    expect(isAlive(first)).toBe(false);
    expect(isAlive(second)).toBe(true);
    expect(t.supervisor.control.info(hostname)).toMatchObject({ state: "ready", pid: second, restarts: 1 });
    lease.release();
  }, TEST_MS);
});

test("stopAll leaves no process behind, descendants included", async () => {
  const t = withSupervisor({ FAKE_CF_DESCENDANT: "1" });
  const id = tag();
  const hostnames = ["a", "b", "c"].map((name) => `cft-${name}-${id}.test`);
  const leases = await within(8000, Promise.all(hostnames.map((h) => t.supervisor.acquire(h, t.holder))), "three tunnels becoming ready");
  const pids = hostnames.flatMap((h) => [...t.pidsOf(h), ...t.pidsOf(h, "descendant")]);
  expect(pids.filter(isAlive)).toHaveLength(6);
  await within(3000, t.supervisor.stopAll(), "stopAll");
  await within(1000, Promise.all(pids.map(gone)), "every tunnel process and descendant ending");
  expect(t.supervisor.list()).toEqual([]);
  expect(t.supervisor.running).toBe(0);
  for (const lease of leases) lease.release();
}, TEST_MS);

import { afterEach, expect, test } from "bun:test";
import { EdgeHub } from "../../src/edge/hub.ts";
import { AddressCounts, SharedCounter } from "../../src/edge/limits.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/ops/log.ts";
import type { TunnelLease, TunnelProvider } from "../../src/supervisor/types.ts";
import { eventually } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";

let hub: EdgeHub | null = null;
afterEach(async () => {
  await hub?.terminate();
  hub = null;
  delete process.env.TTP_HUB_SCRIPT;
});

/** A hub with one scripted worker (tests/edge/hub-worker.ts) in front of a supervisor that hands out port 20000. */
async function start(script: string) {
  process.env.TTP_HUB_SCRIPT = script;
  const loaded = loadConfig(["--workers", "2", "--max-conns-per-ip", "1"], {});
  if (loaded.kind !== "run") throw new Error("config");
  const released: number[] = [];
  const lease = (): TunnelLease => ({ port: 20000, release: () => void released.push(20000) });
  const tunnels: TunnelProvider = { tryAcquire: lease, acquire: async () => lease(), runningPort: () => 20000 };
  const perAddress = new AddressCounts(1);
  const logs: string[] = [];
  hub = new EdgeHub({
    config: loaded.config,
    tunnels,
    perAddress,
    total: new SharedCounter(),
    log: createLogger({ format: "json", level: "debug", write: (line) => logs.push(line) }),
    recentHere: () => [],
    ready: () => [],
    routeCancel: async () => ({ kind: "targets", ports: [], relayed: false }),
    entry: new URL("./hub-worker.ts", import.meta.url),
  });
  await within(5000, hub.start(0), "the scripted worker listening");
  return { hub, released, perAddress, logs };
}

test("a worker's cached lease on a port the tunnel no longer has is refused: the lease given back at once", async () => {
  const t = await start("stale-lease");
  await within(3000, eventually(() => t.released.length, (n) => n === 1), "the stale lease's release");
});

test("a withdrawal resolves only once every worker has acknowledged it", async () => {
  const t = await start("slow-ack");
  let done = false;
  const withdrawn = t.hub.withdraw("cft-a.hub.test").then(() => (done = true));
  await Bun.sleep(100);
  expect(done).toBe(false);
  await within(2000, withdrawn, "the withdrawal after the worker's acknowledgement");
});

test("a worker that exits gives back the leases and the per-address counts of its connections", async () => {
  const t = await start("acquire-then-exit");
  expect(t.perAddress.admit(65, "198.51.100.1")).toBe(true);
  await within(3000, eventually(() => t.released.length, (n) => n === 1), "the dead worker's lease released");
  expect(t.perAddress.admit(2, "198.51.100.1")).toBe(true);
  expect(t.logs.some((line) => line.includes("bug: edge worker exited"))).toBe(true);
});

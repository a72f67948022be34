// GET /status without a browser: the document's fields from their sources, outcomes merged across edge threads and
// sampled for the last minute on a manual clock, the fleet's three cases, control modes, and the admin routes.
import { describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { Metrics } from "../../src/ops/metrics.ts";
import { createLogger } from "../../src/ops/log.ts";
import { SAMPLE_EVERY_MS, StatusReporter, controlMode, defaultNodeId, outcomeTotals, type StatusInputs } from "../../src/ops/status.ts";
import { handleAdmin, type AdminSources } from "../../src/ops/admin.ts";
import { FakeClock } from "../supervisor/fakes.ts";
import { setup } from "../supervisor/harness.ts";

function reporter(metrics: Metrics, clock: FakeClock, extra: Partial<StatusInputs> = {}) {
  let draining = false;
  const inputs: StatusInputs = {
    version: "9.8.7",
    nodeId: "node-a:19000",
    workers: 3,
    control: "loopback",
    clock,
    draining: () => draining,
    edgesUp: () => (draining ? 0 : 3),
    connections: () => 5,
    outcomes: async () => outcomeTotals(metrics, []),
    tunnels: () => [],
    ...extra,
  };
  return { status: new StatusReporter(inputs), drain: () => (draining = true) };
}

describe("the /status document", () => {
  test("every field from its source; every outcome label in both windows", async () => {
    const clock = new FakeClock();
    const metrics = new Metrics();
    const { status, drain } = reporter(metrics, clock);
    await clock.advance(61_500);
    drain();
    const document = await status.read();
    expect(document).toMatchObject({ version: "9.8.7", node_id: "node-a:19000", uptime_seconds: 61, draining: true, workers: 3, edges_up: 0,
      connections: 5, tunnels: [], fleet: null, control: "loopback" });
    expect(Object.keys(document.outcomes.since_start)).toEqual(metrics.connections.entries().map(([outcome]) => outcome));
    expect(Object.keys(document.outcomes.last_minute)).toEqual(Object.keys(document.outcomes.since_start));
    expect(document).not.toHaveProperty("fleet_error");
  });

  test("last_minute leaves out what was counted more than a minute ago; since_start keeps it", async () => {
    const clock = new FakeClock();
    const metrics = new Metrics();
    const { status } = reporter(metrics, clock);
    status.start();
    metrics.connections.inc("proxied", 4);
    await clock.advance(SAMPLE_EVERY_MS);
    metrics.connections.inc("timeout");
    await clock.advance(30_000);
    expect((await status.read()).outcomes.last_minute).toMatchObject({ proxied: 4, timeout: 1 });
    await clock.advance(30_000);
    metrics.connections.inc("proxied");
    const { outcomes } = await status.read();
    expect(outcomes.last_minute).toMatchObject({ proxied: 1, timeout: 1, refused_invalid: 0 });
    expect(outcomes.since_start).toMatchObject({ proxied: 5, timeout: 1 });
    // The sample taken just before that last connection still counts it in the next minute; the one after does not.
    await clock.advance(60_000);
    expect((await status.read()).outcomes.last_minute).toMatchObject({ proxied: 1, timeout: 0 });
    await clock.advance(SAMPLE_EVERY_MS);
    expect((await status.read()).outcomes.last_minute).toMatchObject({ proxied: 0, timeout: 0 });
  });

  test("a fleet's members; a fleet that cannot be read is an empty list and the reason", async () => {
    const clock = new FakeClock();
    const members = [{ node_id: "node-a:19000" }, { node_id: "node-b:19000" }];
    const up = reporter(new Metrics(), clock, { fleet: async () => members }).status;
    expect(await up.read()).toMatchObject({ fleet: members });
    const down = reporter(new Metrics(), clock, { fleet: () => Promise.reject(new Error("redis: connection refused")) }).status;
    expect(await down.read()).toMatchObject({ fleet: [], fleet_error: "redis: connection refused" });
  });
});

test("outcome totals add every edge thread's connections_total to this thread's", () => {
  const metrics = new Metrics();
  metrics.connections.inc("proxied", 2);
  const worker = new Metrics();
  worker.connections.inc("proxied", 3);
  worker.connections.inc("refused_invalid");
  const totals = outcomeTotals(metrics, [worker.snapshot(), worker.snapshot()]);
  expect(totals.get("proxied")).toBe(8);
  expect(totals.get("refused_invalid")).toBe(2);
  expect(totals.get("timeout")).toBe(0);
});

test("control: token when a token file is set, else loopback only on loopback, else off; node id default", () => {
  expect(controlMode("secret", false)).toBe("token");
  expect(controlMode("secret", true)).toBe("token");
  expect(controlMode(null, true)).toBe("loopback");
  expect(controlMode(null, false)).toBe("off");
  expect(defaultNodeId(19000)).toBe(`${hostname()}:19000`);
});

describe("the admin routes", () => {
  const sources = (status?: AdminSources["status"]): AdminSources => {
    const t = setup();
    return { metrics: t.metrics, tunnels: () => t.supervisor.list(), control: t.supervisor.control, unhealthy: () => null, token: null, loopback: true,
      allowSniSuffix: [], log: createLogger({ format: "json", level: "error", write: () => undefined }), ...(status ? { status } : {}) };
  };
  const get = (path: string, from: AdminSources) => handleAdmin(new Request(`http://127.0.0.1:19090${path}`), from);

  test("GET /status answers the document; GET / the page, with a policy that runs only its own script", async () => {
    const from = sources(async () => ({ version: "1.2.3" }));
    const json = await get("/status", from);
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({ version: "1.2.3" });
    const page = await get("/", from);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'sha256-");
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(await page.text()).toContain("<title>tcp-tunnel-proxy status</title>");
  });

  test("without a status source both are 404", async () => {
    expect((await get("/status", sources())).status).toBe(404);
    expect((await get("/", sources())).status).toBe(404);
  });
});

// psql's Ctrl-C behind HAProxy's round robin over two proxies: the cancel is a new connection that lands on either
// proxy. In a fleet every query is cancelled; without one, a cancel landing on the other proxy is lost.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { freePort, type ProxyProcess, startProxy } from "../helpers/proxy-process.ts";
import { postgresUnavailable, startPostgres, type PostgresServer } from "../helpers/postgres.ts";
import { testCerts } from "../helpers/certs.ts";
import { eventually } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { haproxyUnavailable, startBalancer, type Balancer } from "../helpers/haproxy.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { fleetName, requireRedis, summaries } from "../helpers/fleet.ts";

const noRedis = requireRedis();
const others = [postgresUnavailable(), haproxyUnavailable()].filter((why): why is string => why !== null);
for (const why of others) console.warn(`SKIPPED fleet psql tests: ${why}`);
test.if(others.length > 0 && process.env.CI === "true")("CI has PostgreSQL, psql and HAProxy for the fleet psql tests", () => {
  throw new Error(`fleet psql tests cannot run in CI: ${others.join("; ")}`);
});

const HOST = "db-1.demo.test";
const QUERY = "select pg_sleep(30)";

/** Every psql started, so that a failed test leaves none running into the next. */
const spawned: ReturnType<typeof Bun.spawn>[] = [];

function spawnPsql(port: number, sql: string) {
  // host= is the name libpq sends as SNI (and verifies the certificate against); hostaddr= is where it connects.
  const conninfo = `host=${HOST} hostaddr=127.0.0.1 port=${port} sslmode=verify-full sslrootcert=${testCerts().caPath} gssencmode=disable user=postgres dbname=postgres connect_timeout=10`;
  const proc = Bun.spawn(["psql", conninfo, "-XAtc", sql], { stdout: "pipe", stderr: "pipe", env: { ...process.env, PGSSLCERT: "/nonexistent" } });
  spawned.push(proc);
  return proc;
}

async function finished(proc: ReturnType<typeof spawnPsql>) {
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out.trim(), err };
}

/** Sessions running QUERY on the server now, asked of the server directly. */
async function sleepers(server: PostgresServer): Promise<number> {
  return Number((await finished(spawnPsql(server.port, `select count(*) from pg_stat_activity where query = '${QUERY}' and state = 'active'`))).out);
}

/** psql through `front` running QUERY, once the server runs it. */
async function sleeping(front: number, server: PostgresServer) {
  const psql = spawnPsql(front, QUERY);
  await within(15_000, eventually(() => sleepers(server), (n) => n === 1, 15_000), "the query running on the server");
  return psql;
}

/** Two proxies behind HAProxy, trusting it, keeping its PROXY header to themselves (PostgreSQL does not speak it). */
async function front(server: PostgresServer, extra: (i: number) => string[]): Promise<{ proxies: ProxyProcess[]; balancer: Balancer }> {
  const env = { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${server.port}` };
  const args = ["--trusted-proxies", "127.0.0.1", "--proxy-replay", "off", "--log-level", "info", "--hello-timeout", "60s"];
  const proxies = await Promise.all([0, 1].map((i) => startProxy([...args, ...extra(i)], env)));
  return { proxies, balancer: await startBalancer(proxies.map((p) => p.port)) };
}

/** Cancel summaries with `outcome` the two proxies logged so far. */
function cancels(proxies: ProxyProcess[], outcome: string): number {
  return proxies.reduce((sum, p) => sum + summaries(p, outcome).length, 0);
}

describe.skipIf(noRedis !== null || others.length > 0)("psql's Ctrl-C through HAProxy round robin over two proxies", () => {
  let server: PostgresServer;
  let redis: RedisServer;
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = startPostgres(testCerts(), freePort());
    redis = await startRedis();
  });
  // A test that failed midway may leave its query running: end it, and its psql, before the next test or the stops.
  afterEach(async () => {
    for (const proc of spawned.splice(0)) proc.kill("SIGKILL");
    await finished(spawnPsql(server.port, `select pg_terminate_backend(pid) from pg_stat_activity where query = '${QUERY}'`));
  });
  afterAll(async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
    await redis?.stop();
    server?.stop();
  });

  test("in a fleet, four Ctrl-Cs in a row each cancel their query within 2 s, relayed when they land on the other proxy", async () => {
    const name = fleetName();
    const { proxies, balancer } = await front(server, (i) => ["--fleet-redis", redis.url, "--fleet-name", name, "--node-id", `pg-${i}`]);
    stops.push(() => balancer.stop(), ...proxies.map((p) => () => p.stop()));
    await Promise.all(proxies.map((p) => p.waitFor((l) => l.msg === "fleet joined")));

    for (let round = 1; round <= 4; round++) {
      const psql = await sleeping(balancer.port, server);
      const sent = performance.now();
      psql.kill("SIGINT");
      const result = await within(5000, finished(psql), `psql's exit after Ctrl-C ${round}`);
      expect(result.err).toContain("canceling statement due to user request");
      expect(performance.now() - sent).toBeLessThan(2000);
    }
    const relayed = cancels(proxies, "cancel_relayed");
    expect(relayed + cancels(proxies, "cancel_forwarded")).toBe(4);
    expect(relayed).toBeGreaterThanOrEqual(2);
    const handled = proxies.flatMap((p) => p.lines.filter((l) => l.msg === "relayed cancel" && l.outcome === "cancel_forwarded"));
    expect(handled.length).toBe(relayed);
  }, 60_000);

  test("without a fleet, a Ctrl-C whose cancel lands on the other proxy is lost", async () => {
    const { proxies, balancer } = await front(server, () => []);
    stops.push(() => balancer.stop(), ...proxies.map((p) => () => p.stop()));
    let lost = 0;
    for (let round = 1; round <= 4; round++) {
      const [forwarded, unroutable] = [cancels(proxies, "cancel_forwarded"), cancels(proxies, "cancel_unroutable")];
      const psql = await sleeping(balancer.port, server);
      psql.kill("SIGINT");
      await within(5000, eventually(() => cancels(proxies, "cancel_forwarded") + cancels(proxies, "cancel_unroutable"),
        (n) => n === forwarded + unroutable + 1), `the summary of cancel ${round}`);
      if (cancels(proxies, "cancel_unroutable") > unroutable) {
        // Nothing was forwarded: the query runs on. End it from a direct session.
        lost++;
        expect(await sleepers(server)).toBe(1);
        await finished(spawnPsql(server.port, `select pg_cancel_backend(pid) from pg_stat_activity where query = '${QUERY}'`));
      }
      expect((await within(5000, finished(psql), `psql's exit in round ${round}`)).err).toContain("canceling statement due to user request");
    }
    console.log(`without a fleet, ${lost} of 4 Ctrl-Cs were lost`);
    expect(lost).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

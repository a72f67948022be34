import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { freePort, startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { postgresUnavailable, startPostgres, type PostgresServer } from "../helpers/postgres.ts";
import { testCerts } from "../helpers/certs.ts";
import { eventually } from "../helpers/admin.ts";

const unavailable = postgresUnavailable();
if (unavailable !== null) console.warn(`SKIPPED real PostgreSQL tests: ${unavailable}`);

// Locally they may be skipped; CI (CI=true, with .ci/run installing PostgreSQL) must run them.
test.if(unavailable !== null && process.env.CI === "true")("CI has a real PostgreSQL to test against", () => {
  throw new Error(`real PostgreSQL tests cannot run in CI: ${unavailable}`);
});

function spawnPsql(port: number, host: string, sql: string, extra = "") {
  const conninfo = `host=${host} hostaddr=127.0.0.1 port=${port} sslmode=verify-full sslrootcert=${testCerts().caPath} user=postgres dbname=postgres connect_timeout=10 ${extra}`;
  return Bun.spawn(["psql", conninfo, "-XAtc", sql], { stdout: "pipe", stderr: "pipe", env: { ...process.env, PGSSLCERT: "/nonexistent" } });
}

async function finished(proc: ReturnType<typeof spawnPsql>): Promise<{ code: number; out: string; err: string }> {
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out.trim(), err };
}

function psql(port: number, host: string, sql: string, extra = ""): Promise<{ code: number; out: string; err: string }> {
  return finished(spawnPsql(port, host, sql, extra));
}

describe.skipIf(unavailable !== null)("real psql through the proxy to a real PostgreSQL with TLS", () => {
  let server: PostgresServer;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    server = startPostgres(testCerts(), freePort());
    // A hello timeout longer than psql's connect_timeout: a proxy that stalled the SSLRequest (as the Go program did,
    // peeking 12 bytes of an 8-byte message) would make every psql test fail rather than merely run slowly.
    proxy = await startProxy(["--log-level", "info", "--hello-timeout", "60s"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${server.port}` });
  });
  afterAll(async () => {
    await proxy?.stop();
    server?.stop();
  });

  test("the server itself answers psql directly", async () => {
    expect(await psql(server.port, "db-1.demo.test", "select 1")).toMatchObject({ code: 0, out: "1" });
  });

  test("sslmode=verify-full through the proxy: the backend sees TLS and the query runs", async () => {
    const result = await psql(proxy.port, "db-1.demo.test", "select ssl from pg_stat_ssl where pid = pg_backend_pid()");
    expect(result).toMatchObject({ code: 0, out: "t" });
    const summary = await proxy.waitFor((l) => l.msg === "connection" && l.sni === "db-1.demo.test");
    expect(summary).toMatchObject({ tunnel: "cft-db-1.demo.test", outcome: "proxied" });
  });

  test("a second hostname gets its own tunnel; both work concurrently", async () => {
    const results = await Promise.all([
      psql(proxy.port, "db-2.demo.test", "select 2"),
      psql(proxy.port, "db-1.demo.test", "select 3"),
      psql(proxy.port, "db-2.demo.test", "select 4"),
    ]);
    expect(results.map((r) => [r.code, r.out])).toEqual([[0, "2"], [0, "3"], [0, "4"]]);
    const starts = proxy.lines.filter((l) => l.msg === "tunnel starting").map((l) => l.tunnel);
    expect(new Set(starts)).toEqual(new Set(["cft-db-1.demo.test", "cft-db-2.demo.test"]));
  });

  test("Ctrl-C in psql cancels the running query through the proxy, and the next session works", async () => {
    const sleeping = spawnPsql(proxy.port, "db-1.demo.test", "select pg_sleep(20)");
    const running = "select count(*) from pg_stat_activity where query = 'select pg_sleep(20)' and state = 'active'";
    await eventually(() => psql(server.port, "db-1.demo.test", running), (r) => r.out === "1", 10_000);
    const sent = performance.now();
    sleeping.kill("SIGINT");
    const result = await finished(sleeping);
    const elapsed = performance.now() - sent;
    expect(result.err).toContain("canceling statement due to user request");
    expect(elapsed).toBeLessThan(2000);
    const summary = await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "cancel_forwarded");
    expect(summary).toMatchObject({ client: "127.0.0.1", tunnels: 1 });
    expect(await psql(proxy.port, "db-1.demo.test", "select 5")).toMatchObject({ code: 0, out: "5" });
  });

  test("a plaintext client is told TLS is required", async () => {
    const result = await psql(proxy.port, "db-1.demo.test", "select 1", "sslmode=disable");
    expect(result.code).not.toBe(0);
    expect(result.err).toContain("sslmode=require");
  });
});

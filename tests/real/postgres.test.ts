// psql through the whole real chain: proxy → Cloudflare's cloudflared → the edge stand-in → PostgreSQL 15 with TLS,
// verify-full against the backend's certificate, and psql's Ctrl-C cancelling a running query through it all.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { freePort, type ProxyProcess } from "../helpers/proxy-process.ts";
import { postgresUnavailable, startPostgres, type PostgresServer } from "../helpers/postgres.ts";
import { testCerts } from "../helpers/certs.ts";
import { eventually } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { realChain, realSkipped, realUnavailable, type RealChain } from "./harness.ts";

const pgMissing = realUnavailable === null ? postgresUnavailable() : null;
if (pgMissing !== null) console.warn(`SKIPPED psql through the real cloudflared: ${pgMissing}`);
test.if(pgMissing !== null && process.env.CI === "true")("CI has PostgreSQL for the real chain", () => {
  throw new Error(`psql through the real cloudflared cannot run in CI: ${pgMissing}`);
});

const SNI = "db-1.demo.test";
const TUNNEL = `cft-${SNI}`;

function spawnPsql(port: number, sql: string) {
  const conninfo = `host=${SNI} hostaddr=127.0.0.1 port=${port} sslmode=verify-full sslrootcert=${testCerts().caPath} user=postgres dbname=postgres connect_timeout=20`;
  return Bun.spawn(["psql", conninfo, "-XAtc", sql], { stdout: "pipe", stderr: "pipe", env: { ...process.env, PGSSLCERT: "/nonexistent" } });
}

async function finished(proc: ReturnType<typeof spawnPsql>): Promise<{ code: number; out: string; err: string }> {
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out.trim(), err };
}

describe.skipIf(realSkipped() || pgMissing !== null)("psql through the real cloudflared", () => {
  let server: PostgresServer;
  let chain: RealChain;
  let proxy: ProxyProcess;
  const upgrades = () => chain.edge.requests.filter((r) => r.host === TUNNEL && r.upgrade).length;

  beforeAll(async () => {
    server = startPostgres(testCerts(), freePort());
    chain = realChain();
    chain.serve(TUNNEL, { kind: "bridge", port: server.port });
    proxy = await chain.proxy(["--log-level", "info", "--hello-timeout", "60s"]);
  });
  afterAll(async () => {
    await proxy?.stop();
    chain?.close();
    server?.stop();
  });

  test("sslmode=verify-full: the query runs over TLS end to end, carried by one WebSocket", async () => {
    const result = await within(30_000, finished(spawnPsql(proxy.port, "select ssl from pg_stat_ssl where pid = pg_backend_pid()")), "psql");
    expect(result).toMatchObject({ code: 0, out: "t" });
    expect(await proxy.waitFor((l) => l.msg === "connection" && l.sni === SNI)).toMatchObject({ tunnel: TUNNEL, outcome: "proxied" });
    expect(upgrades()).toBe(1);
    const ready = await proxy.waitFor((l) => l.msg === "tunnel ready");
    console.log(`real chain: tunnel ready ${ready.startup_ms} ms after its spawn`);
  });

  test("Ctrl-C in psql cancels pg_sleep(30) through the real chain, and the next session works", async () => {
    const before = upgrades();
    const sleeping = spawnPsql(proxy.port, "select pg_sleep(30)");
    const direct = `host=127.0.0.1 port=${server.port} sslmode=require user=postgres dbname=postgres`;
    const running = "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'";
    const count = async () => (await finished(Bun.spawn(["psql", direct, "-XAtc", running], { stdout: "pipe", stderr: "pipe" }))).out;
    await eventually(count, (n) => n === "1", 20_000);
    const sent = performance.now();
    sleeping.kill("SIGINT");
    const result = await within(20_000, finished(sleeping), "psql's end after Ctrl-C");
    const elapsedMs = performance.now() - sent;
    console.log(`real chain: Ctrl-C to cancelled query in ${elapsedMs.toFixed(0)} ms`);
    expect(result.err).toContain("canceling statement due to user request");
    const summary = await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "cancel_forwarded");
    expect(summary).toMatchObject({ client: "127.0.0.1", tunnels: 1 });
    // The cancel is a connection of its own: one more WebSocket to the edge, on the same tunnel process.
    expect(upgrades()).toBe(before + 2);
    expect(await count()).toBe("0");
    expect(await within(30_000, finished(spawnPsql(proxy.port, "select 5")), "psql after the cancel")).toMatchObject({ code: 0, out: "5" });
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting")).toHaveLength(1);
  });
});

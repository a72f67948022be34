// The admin server's routes and every status code, against a real Supervisor on the fake spawner and clock.
import { describe, expect, test } from "bun:test";
import { ProxyError } from "../../src/errors.ts";
import { handleAdmin, isLoopbackHost, type AdminSources } from "../../src/ops/admin.ts";
import { createLogger } from "../../src/ops/log.ts";
import { setup, type Harness } from "../supervisor/harness.ts";

const A = "cft-a.example.test";
const TOKEN = "s3cret-token";

interface AdminOptions {
  readonly token?: string | null;
  readonly loopback?: boolean;
  readonly allow?: readonly string[];
  readonly logs?: Record<string, unknown>[];
}

function admin(t: Harness, auth: AdminOptions = {}, draining = false) {
  const logs = auth.logs ?? [];
  const sources: AdminSources = {
    metrics: t.metrics,
    tunnels: () => t.supervisor.list(),
    control: t.supervisor.control,
    unhealthy: () => (draining ? "draining" : null),
    token: auth.token ?? null,
    loopback: auth.loopback ?? true,
    allowSniSuffix: auth.allow ?? [],
    log: createLogger({ format: "json", level: "debug", write: (line) => logs.push(JSON.parse(line)) }),
  };
  /** Sends a request and runs the fake clock until it is answered, so starts and stops can complete. */
  return async (method: string, path: string, headers: Record<string, string> = {}): Promise<Response> => {
    let answered = false;
    const request = new Request(`http://127.0.0.1:19090${path}`, { method, headers });
    const response = handleAdmin(request, sources, "192.0.2.9").finally(() => (answered = true));
    for (let i = 0; i < 100 && !answered; i++) await t.clock.advance(50);
    return response;
  };
}

describe("read-only routes", () => {
  test("/metrics, /healthz (ok, draining), /tunnels, an unknown path, a wrong method", async () => {
    const t = setup();
    const send = admin(t);
    expect((await send("GET", "/metrics")).status).toBe(200);
    expect(await (await send("GET", "/healthz")).text()).toBe("ok\n");
    expect((await admin(t, {}, true)("GET", "/healthz")).status).toBe(503);
    await t.ready(A);
    const list = await send("GET", "/tunnels");
    expect(await list.json()).toEqual([expect.objectContaining({ hostname: A, state: "ready", pinned: false })]);
    expect((await send("GET", "/nope")).status).toBe(404);
    const wrong = await send("POST", "/metrics");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD");
  });

  test("GET /tunnels/{hostname}: 200 with the object, 404 unknown; open without a token", async () => {
    const t = setup();
    const send = admin(t, { token: TOKEN, loopback: false });
    expect((await send("GET", `/tunnels/${A}`)).status).toBe(404);
    await t.ready(A);
    const found = await send("GET", `/tunnels/${A.toUpperCase()}`);
    expect(found.status).toBe(200);
    expect(await found.json()).toMatchObject({ hostname: A, state: "ready", port: 20000, pinned: false });
  });

  test("other methods on /tunnels/{hostname}: 405", async () => {
    const response = await admin(setup())("PUT", `/tunnels/${A}`);
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET, HEAD, POST, DELETE");
  });
});

describe("POST /tunnels/{hostname}", () => {
  test("200 with the object once ready; ?pin=true pins it; a later connection needs no second start", async () => {
    const t = setup();
    const response = await admin(t)("POST", `/tunnels/${A}?pin=true`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ hostname: A, state: "idle", pinned: true, port: 20000 });
    expect((await t.acquire(A)).port).toBe(20000);
    expect(t.spawner.children).toHaveLength(1);
  });

  test.each(["bad_host.test", "-x.test", "single", "a..b", `${"a".repeat(64)}.test`, "%E0%A4%A"])("400 for %p, and nothing starts", async (name) => {
    const t = setup();
    const response = await admin(t)("POST", `/tunnels/${name}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: expect.any(String) });
    expect(t.spawner.children).toHaveLength(0);
  });

  test("the hostname is lower-cased first", async () => {
    const t = setup();
    expect(await (await admin(t)("POST", "/tunnels/CFT-A.Example.TEST")).json()).toMatchObject({ hostname: A });
  });

  test("503 with the error when the start fails, in the cooldown, and at capacity", async () => {
    const t = setup({ maxTunnels: 1 });
    const send = admin(t);
    t.spawner.failWith = new ProxyError("spawn_failed", "cannot start tunnel: cloudflared not found");
    const failed = await send("POST", `/tunnels/${A}`);
    expect(failed.status).toBe(503);
    expect(await failed.json()).toEqual({ error: "cannot start tunnel: cloudflared not found" });
    expect(await (await send("POST", `/tunnels/${A}`)).json()).toEqual({ error: expect.stringContaining("cooldown") });
    t.spawner.failWith = null;
    await t.ready("cft-b.example.test");
    await t.clock.advance(2000);
    const full = await send("POST", `/tunnels/${A}`);
    expect(full.status).toBe(503);
    expect(await full.json()).toEqual({ error: expect.stringContaining("--max-tunnels") });
  });
});

describe("DELETE /tunnels/{hostname}", () => {
  test("404 unknown, 409 in use, 200 once stopped with ?force=true, its connections closed", async () => {
    const t = setup();
    const send = admin(t);
    expect((await send("DELETE", `/tunnels/${A}`)).status).toBe(404);
    await t.ready(A);
    expect((await send("DELETE", `/tunnels/${A}`)).status).toBe(409);
    expect(t.spawner.alive).toHaveLength(1);
    const forced = await send("DELETE", `/tunnels/${A}?force=true`);
    expect(forced.status).toBe(200);
    expect(await forced.json()).toEqual({ hostname: A, state: "stopped" });
    expect(t.lost).toEqual([`${A}: stopped by admin`]);
    expect(t.spawner.alive).toHaveLength(0);
  });

  test("200 for an idle tunnel, which is gone afterwards", async () => {
    const t = setup();
    (await t.ready(A)).release();
    expect((await admin(t)("DELETE", `/tunnels/${A}`)).status).toBe(200);
    expect(t.supervisor.control.info(A)).toBeNull();
  });
});

describe("auth", () => {
  test("with a token, POST and DELETE need it: 401 without it, with a wrong one or one of another length", async () => {
    const t = setup();
    const send = admin(t, { token: TOKEN, loopback: true });
    const attempts: Record<string, string>[] = [{}, { authorization: "Bearer s3cret-tokeN" }, { authorization: "Bearer short" }, { authorization: `Basic ${TOKEN}` },
      { authorization: "Bearer s3cret-toke" }, { authorization: "Bearer s3cret-token-extra" }];
    for (const headers of attempts) {
      const response = await send("POST", `/tunnels/${A}`, headers);
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toBe("Bearer");
    }
    expect(t.spawner.children).toHaveLength(0);
    expect(t.supervisor.control.info(A)).toBeNull();
    expect((await send("POST", `/tunnels/${A}`, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await send("DELETE", `/tunnels/${A}`, { authorization: "Bearer wrong" })).status).toBe(401);
    expect(t.supervisor.control.info(A)).not.toBeNull();
    expect((await send("DELETE", `/tunnels/${A}`, { authorization: `bearer ${TOKEN}` })).status).toBe(200);
  });

  test("without a token, POST and DELETE answer 403 off loopback, and nothing starts", async () => {
    const t = setup();
    const send = admin(t, { token: null, loopback: false });
    expect((await send("POST", `/tunnels/${A}`)).status).toBe(403);
    expect(t.spawner.children).toHaveLength(0);
    await t.ready(A);
    expect((await send("DELETE", `/tunnels/${A}?force=true`)).status).toBe(403);
    expect(t.spawner.alive).toHaveLength(1);
    expect((await send("GET", `/tunnels/${A}`)).status).toBe(200);
    expect((await send("GET", "/tunnels")).status).toBe(200);
  });

  test("isLoopbackHost: 127.0.0.0/8, ::1 and localhost", () => {
    for (const host of ["127.0.0.1", "127.10.20.30", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost", "LocalHost"]) {
      expect([host, isLoopbackHost(host)]).toEqual([host, true]);
    }
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "126.255.255.255", "192.168.1.1", "example.com", "localhost.example.com", ""]) {
      expect([host, isLoopbackHost(host)]).toEqual([host, false]);
    }
  });
});

describe("the trust boundary", () => {
  test("POST of a hostname outside --allow-sni-suffix: 403, logged, nothing started; inside it starts", async () => {
    const t = setup();
    const logs: Record<string, unknown>[] = [];
    const send = admin(t, { allow: ["good.test"], logs });
    const refused = await send("POST", "/tunnels/cft-x.evil.test?pin=true");
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: expect.stringContaining("--allow-sni-suffix") });
    expect(t.spawner.children).toHaveLength(0);
    expect((await send("POST", "/tunnels/cft-xgood.test")).status).toBe(403);
    expect(logs.filter((l) => l.msg === "admin request refused")).toEqual([
      expect.objectContaining({ level: "warn", remote: "192.0.2.9", method: "POST", path: "/tunnels/cft-x.evil.test", status: 403 }),
      expect.objectContaining({ path: "/tunnels/cft-xgood.test", status: 403 }),
    ]);
    expect((await send("POST", "/tunnels/cft-db.good.test")).status).toBe(200);
  });

  test("on a loopback admin, a Host that is not a loopback name gets 403, GET included; loopback names pass", async () => {
    const t = setup();
    const logs: Record<string, unknown>[] = [];
    const send = admin(t, { logs });
    for (const host of ["attacker.example:19090", "attacker.example", "10.0.0.1:19090", "localhost.attacker.example"]) {
      expect([host, (await send("GET", "/metrics", { host })).status]).toEqual([host, 403]);
    }
    expect((await send("POST", `/tunnels/${A}`, { host: "rebind.attacker.example:19090" })).status).toBe(403);
    expect(t.spawner.children).toHaveLength(0);
    for (const host of ["127.0.0.1:19090", "localhost:19090", "localhost", "[::1]:19090", "127.0.0.2:1"]) {
      expect([host, (await send("GET", "/healthz", { host })).status]).toEqual([host, 200]);
    }
    expect(logs.filter((l) => l.msg === "admin request refused")).toHaveLength(5);
    expect(logs[0]).toMatchObject({ why: 'Host "attacker.example:19090" is not loopback', method: "GET", path: "/metrics" });
  });

  test("off loopback, Host is not checked (the admin network is the operator's)", async () => {
    const send = admin(setup(), { loopback: false, token: TOKEN });
    expect((await send("GET", "/healthz", { host: "proxy.internal:19090" })).status).toBe(200);
  });

  test("a tokenless POST or DELETE from a foreign Origin (null included) gets 403; the server's own origin passes", async () => {
    const t = setup();
    const send = admin(t);
    const host = "127.0.0.1:19090";
    for (const origin of ["http://attacker.example", "null", "http://127.0.0.1:8080", "https://127.0.0.1:19090"]) {
      expect([origin, (await send("POST", `/tunnels/${A}`, { host, origin })).status]).toEqual([origin, 403]);
    }
    expect(t.spawner.children).toHaveLength(0);
    expect((await send("POST", `/tunnels/${A}`, { host, origin: `http://${host}` })).status).toBe(200);
    expect((await send("DELETE", `/tunnels/${A}`, { host, origin: "http://attacker.example" })).status).toBe(403);
    expect(t.supervisor.control.info(A)).not.toBeNull();
    expect((await send("GET", `/tunnels/${A}`, { host, origin: "http://attacker.example" })).status).toBe(200);
  });

  test("with a token, the Origin does not matter: the token does", async () => {
    const t = setup();
    const send = admin(t, { token: TOKEN });
    expect((await send("POST", `/tunnels/${A}`, { origin: "http://elsewhere.example", authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });

  test("every 401 and 403 logs one warning with the remote address, the path and why", async () => {
    const t = setup();
    const logs: Record<string, unknown>[] = [];
    const send = admin(t, { token: TOKEN, logs });
    await send("POST", `/tunnels/${A}`);
    await send("DELETE", `/tunnels/${A}`, { authorization: "Bearer nope" });
    expect(logs.filter((l) => l.msg === "admin request refused")).toEqual([
      expect.objectContaining({ level: "warn", remote: "192.0.2.9", method: "POST", path: `/tunnels/${A}`, status: 401, why: "no bearer token" }),
      expect.objectContaining({ level: "warn", method: "DELETE", status: 401, why: "wrong bearer token" }),
    ]);
    expect(JSON.stringify(logs)).not.toContain(TOKEN);
  });
});

describe("query values and answers", () => {
  test.each(["yes", "1", "TRUE", ""])("?pin=%p and ?force=%p are 400, nothing done", async (value) => {
    const t = setup();
    const send = admin(t);
    expect((await send("POST", `/tunnels/${A}?pin=${value}`)).status).toBe(400);
    expect(t.spawner.children).toHaveLength(0);
    (await t.ready(A)).release();
    expect((await send("DELETE", `/tunnels/${A}?force=${value}`)).status).toBe(400);
    expect(t.supervisor.control.info(A)).not.toBeNull();
  });

  test("POST ?pin=false unpins without stopping", async () => {
    const t = setup();
    const send = admin(t);
    expect(await (await send("POST", `/tunnels/${A}?pin=true`)).json()).toMatchObject({ pinned: true });
    const unpinned = await send("POST", `/tunnels/${A}?pin=false`);
    expect(unpinned.status).toBe(200);
    expect(await unpinned.json()).toMatchObject({ pinned: false, state: "idle" });
    expect(t.spawner.alive).toHaveLength(1);
  });

  test("POST ?pin=true of a tunnel in its cooldown: 202, pinned, retried when the cooldown ends", async () => {
    const t = setup();
    const send = admin(t);
    t.spawner.failWith = new ProxyError("spawn_failed", "cannot start tunnel: cloudflared not found");
    expect((await send("POST", `/tunnels/${A}`)).status).toBe(503);
    t.spawner.failWith = null;
    const pinned = await send("POST", `/tunnels/${A}?pin=true`);
    expect(pinned.status).toBe(202);
    expect(await pinned.json()).toMatchObject({ hostname: A, state: "failed", pinned: true });
    await t.clock.advance(2100);
    expect(t.supervisor.control.info(A)).toMatchObject({ state: "idle", pinned: true });
  });

  test("HEAD answers like GET and never stops the tunnel", async () => {
    const t = setup();
    const send = admin(t);
    (await t.ready(A)).release();
    const head = await send("HEAD", `/tunnels/${A}`);
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toContain("application/json");
    expect((await send("HEAD", "/tunnels/cft-unknown.example.test")).status).toBe(404);
    expect(t.supervisor.control.info(A)).toMatchObject({ state: "idle" });
    expect(t.spawner.alive).toHaveLength(1);
  });

  test("DELETE ?force=false on a busy tunnel: 409, its connections kept", async () => {
    const t = setup();
    await t.ready(A);
    const response = await admin(t)("DELETE", `/tunnels/${A}?force=false`);
    expect(response.status).toBe(409);
    expect(t.lost).toEqual([]);
    expect(t.supervisor.control.info(A)).toMatchObject({ connections: 1, state: "ready" });
  });
});

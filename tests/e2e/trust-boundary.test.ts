// The trust boundary through the compiled binary: no open relay for a service token, secrets kept out of the log,
// and an admin server that neither a web page nor a name outside the allowlist can drive.
import { describe, expect, test } from "bun:test";
import { portRange, proxyCommand, startProxy } from "../helpers/proxy-process.ts";
import { rawHttp } from "../helpers/http.ts";
import { tunnels } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { rawConnect } from "../helpers/clients.ts";

const SECRET = "9f2c-very-secret-access-token-value";

/** Runs the binary to its exit (it should not start) and gives its exit code and stderr. */
async function runToExit(args: string[], env: Record<string, string>) {
  const proc = Bun.spawn([...proxyCommand(), "--listen", "127.0.0.1:0", "--port-range", portRange(), ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const code = await within(15_000, proc.exited, "the proxy's exit");
  return { code, stderr: await new Response(proc.stderr).text(), stdout: await new Response(proc.stdout).text() };
}

describe("no open relay", () => {
  test.each([
    ["TUNNEL_SERVICE_TOKEN_SECRET in the environment", [], { TUNNEL_SERVICE_TOKEN_ID: "id.access", TUNNEL_SERVICE_TOKEN_SECRET: SECRET }],
    ["--service-token-secret=… among the cloudflared arguments", ["--cloudflared-arg", `--service-token-secret=${SECRET}`], {}],
    ["--service-token-secret … as two arguments", ["--cloudflared-arg", "--service-token-secret", "--cloudflared-arg", SECRET], {}],
    ["cloudflared's short alias --secret", ["--cloudflared-arg", `--secret=${SECRET}`], {}],
    ["an Access header given with -H", ["--cloudflared-arg", "-H", "--cloudflared-arg", `Cf-Access-Client-Secret: ${SECRET}`], {}],
  ] as [string, string[], Record<string, string>][])("a service token without --allow-sni-suffix exits 2: %s", async (_, args, env) => {
    const result = await runToExit(args, env);
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("--allow-sni-suffix");
    expect(result.stderr).not.toContain(SECRET);
  });

  test("--warm names outside the allowlist exit 2", async () => {
    const result = await runToExit(["--allow-sni-suffix", "good.test", "--warm", "cft-a.evil.test"], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"cft-a.evil.test" is not');
  });

  test("--allow-sni-suffix any starts, warned; no secret value reaches the log", async () => {
    const proxy = await startProxy(
      ["--allow-sni-suffix", "any", "--cloudflared-arg", `--service-token-secret=${SECRET}`, "--cloudflared-arg", "--db-password", "--cloudflared-arg", SECRET],
      { TUNNEL_SERVICE_TOKEN_SECRET: SECRET },
    );
    const warning = await proxy.waitFor((l) => l.level === "warn" && String(l.msg).startsWith("--allow-sni-suffix any"));
    expect(warning.service_token).toBe("sent to those hostnames");
    const start = await proxy.waitFor((l) => l.msg === "starting");
    expect(start.cloudflared_args).toBe("--service-token-secret=*** --db-password ***");
    await proxy.stop();
    expect(JSON.stringify(proxy.lines)).not.toContain(SECRET);
  });

  test("cloudflared printing its requests (debug level) does not put the token into the proxy's log", async () => {
    const proxy = await startProxy(["--allow-sni-suffix", "printed.test", "--log-level", "debug"],
      { TUNNEL_SERVICE_TOKEN_ID: "print-id.access", TUNNEL_SERVICE_TOKEN_SECRET: SECRET, FAKE_CF_PRINT_REQUEST: "1" });
    const socket = await rawConnect(proxy.port);
    const echoed = new Promise((resolve) => socket.once("data", resolve));
    socket.write(records(clientHello({ names: ["db.printed.test"] })));
    await within(10_000, echoed, "the echo");
    await proxy.waitFor((l) => l.msg === "cloudflared" && String(l.line).startsWith("Cf-Access-Client-Secret:"));
    socket.destroy();
    await proxy.stop();
    expect(proxy.lines.filter((l) => l.msg === "cloudflared" && String(l.line).startsWith("Cf-Access-Client-"))).toEqual([
      expect.objectContaining({ line: "Cf-Access-Client-Id: ***" }),
      expect.objectContaining({ line: "Cf-Access-Client-Secret: ***" }),
    ]);
    expect(JSON.stringify(proxy.lines)).not.toContain(SECRET);
  });

  test("no token and no allowlist starts (the older program's drop-in case) with one warning", async () => {
    const proxy = await startProxy([]);
    expect(proxy.lines.filter((l) => l.level === "warn" && String(l.msg).startsWith("no --allow-sni-suffix"))).toHaveLength(1);
    expect(proxy.lines.find((l) => l.msg === "starting")?.allow_sni_suffix).toBe("unset");
    await proxy.stop();
  });
});

describe("the admin server and the browser on the host", () => {
  test("a name outside --allow-sni-suffix gets 403 and starts nothing; one inside starts", async () => {
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0", "--allow-sni-suffix", "good.test"]);
    const port = proxy.adminPort as number;
    const host = `127.0.0.1:${port}`;
    for (const path of ["/tunnels/cft-x.attacker.test?pin=true", "/tunnels/cft-x.attacker.test"]) {
      expect((await rawHttp(port, "POST", path, { host })).status).toBe(403);
    }
    expect(await tunnels(port)).toEqual([]);
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting")).toEqual([]);
    const refusal = await proxy.waitFor((l) => l.msg === "admin request refused");
    expect(refusal).toMatchObject({ level: "warn", remote: "127.0.0.1", path: "/tunnels/cft-x.attacker.test", status: 403 });
    expect((await rawHttp(port, "POST", `/tunnels/cft-${unique()}.good.test`, { host })).status).toBe(200);
    await proxy.stop();
  });

  test("DNS rebinding: a Host that is not loopback gets 403 on every path; curl-like requests are unaffected", async () => {
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0"]);
    const port = proxy.adminPort as number;
    for (const [method, path] of [["GET", "/tunnels"], ["GET", "/metrics"], ["POST", "/tunnels/cft-r.rebind.test"], ["DELETE", "/tunnels/cft-r.rebind.test"]]) {
      expect([method, path, (await rawHttp(port, method as string, path as string, { host: `rebind.attacker.example:${port}` })).status]).toEqual([method, path, 403]);
    }
    expect(await tunnels(port)).toEqual([]);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) expect((await rawHttp(port, "GET", "/healthz", { host })).status).toBe(200);
    await proxy.stop();
  });

  test("a cross-origin POST (a web page's simple request, no preflight) gets 403 and starts nothing; Origin null too", async () => {
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0"]);
    const port = proxy.adminPort as number;
    const host = `127.0.0.1:${port}`;
    for (const origin of ["http://attacker.example", "null", "http://127.0.0.1:8000"]) {
      expect((await rawHttp(port, "POST", "/tunnels/cft-page.origin.test?pin=true", { host, origin })).status).toBe(403);
    }
    expect(await tunnels(port)).toEqual([]);
    expect((await rawHttp(port, "POST", "/tunnels/cft-page.origin.test", { host, origin: `http://${host}` })).status).toBe(200);
    await proxy.stop();
  });

  test("a POST for a start that takes longer than the server's idle timeout still gets its answer", async () => {
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0", "--startup-timeout", "30s"], { FAKE_CF_START_DELAY_MS: "12000" });
    const port = proxy.adminPort as number;
    const started = performance.now();
    const response = await rawHttp(port, "POST", "/tunnels/cft-slow.idle.test", { host: `127.0.0.1:${port}` }, 25_000);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ hostname: "cft-slow.idle.test", state: "idle" });
    expect(performance.now() - started).toBeGreaterThan(11_000);
    await proxy.stop();
  }, 40_000);

  test("the same rules hold for the tunnel a DELETE names: a foreign Origin cannot stop it", async () => {
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0"]);
    const port = proxy.adminPort as number;
    const host = `127.0.0.1:${port}`;
    expect((await rawHttp(port, "POST", "/tunnels/cft-keep.origin.test?pin=true", { host })).status).toBe(200);
    expect((await rawHttp(port, "DELETE", "/tunnels/cft-keep.origin.test", { host, origin: "http://attacker.example" })).status).toBe(403);
    expect((await tunnels(port)).map((t) => t.hostname)).toEqual(["cft-keep.origin.test"]);
    await proxy.stop();
  });
});

test("the listen port on the first port of the range, or the admin port inside it, is refused at start", async () => {
  const range = portRange();
  const first = range.split("-")[0] as string;
  const inRange = String(Number(first) + 3);
  const a = await runToExit(["--port-range", range, "--listen", `127.0.0.1:${first}`], {});
  expect(a.code).toBe(2);
  expect(a.stderr).toContain(`invalid --listen "127.0.0.1:${first}"`);
  const b = await runToExit(["--port-range", range, "--metrics-listen", `127.0.0.1:${inRange}`], {});
  expect(b.code).toBe(2);
  expect(b.stderr).toContain(`invalid --metrics-listen "127.0.0.1:${inRange}"`);
});

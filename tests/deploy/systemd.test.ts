// deploy/systemd: both units pass `systemd-analyze verify` without a warning, and the template's own commands run a
// blue/green upgrade: green starts beside blue on the same address, its ExecStartPost returns once it answers, blue
// drains and exits 0 while green serves.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, portRange, proxyCommand, startProxy } from "../helpers/proxy-process.ts";
import { echoRoundTrip, rawConnect } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { DEPLOY, binaryHas, parseEnvExample, run, tool } from "./tools.ts";

const DIR = resolve(DEPLOY, "systemd");
const INSTALLED = "/usr/local/bin/tcp-tunnel-proxy";
const analyze = tool("systemd-analyze", "systemd");
const curl = tool("curl", "curl");

/** The unit with ExecStart pointing at the binary under test: verify wants an executable there. */
function unitCopy(file: string): string {
  const text = readFileSync(resolve(DIR, file), "utf8");
  expect(text).toContain(`ExecStart=${INSTALLED}`);
  const dir = mkdtempSync(join(tmpdir(), "ttp-deploy-units-"));
  writeFileSync(join(dir, file), text.replaceAll(INSTALLED, proxyCommand()[0] as string));
  return dir;
}

describe.skipIf(analyze === null)("systemd-analyze verify", () => {
  for (const [file, unit] of [["tcp-tunnel-proxy.service", "tcp-tunnel-proxy.service"], ["tcp-tunnel-proxy@.service", "tcp-tunnel-proxy@blue.service"]]) {
    test(`${unit}: valid, and not one warning (verify exits 0 on unknown keys and bad values)`, async () => {
      const dir = unitCopy(file as string);
      const result = await run([analyze as string, "verify", "--man=no", join(dir, unit as string)]);
      rmSync(dir, { recursive: true });
      expect(result).toEqual({ code: 0, out: "" });
    });
  }
});

/** The value of `key` in the template unit, with systemd's specifiers %H and %i expanded. */
function directive(key: string, colour: string): string {
  const line = readFileSync(resolve(DIR, "tcp-tunnel-proxy@.service"), "utf8").split("\n").find((l) => l.startsWith(`${key}=`));
  if (line === undefined) throw new Error(`no ${key}= in the template unit`);
  return line.slice(key.length + 1).replaceAll("%H", hostname()).replaceAll("%i", colour);
}

/** The template's ExecStartPost for `colour`, run as systemd would with that colour's METRICS_LISTEN; killed if left. */
function startPost(colour: string, admin: number) {
  const script = directive("ExecStartPost", colour).replace(/^\/bin\/sh -c '(.*)'$/, "$1");
  const post = Bun.spawn(["/bin/sh", "-c", script], { env: { ...process.env, METRICS_LISTEN: `127.0.0.1:${admin}` }, stdout: "ignore", stderr: "ignore" });
  return { done: () => within(10_000, post.exited, `${colour}'s ExecStartPost`).finally(() => post.kill("SIGKILL")) };
}

test.if(curl !== null)("ExecStartPost waits for a 200 from /healthz: a 503 (draining) is not ready, it asks again", async () => {
  const answers = [503, 200];
  let asked = 0;
  const admin = freePort();
  const post = startPost("blue", admin);
  const server = Bun.serve({ hostname: "127.0.0.1", port: admin, fetch: () => new Response("", { status: answers[asked++] ?? 200 }) });
  try {
    expect(await post.done()).toBe(0);
  } finally {
    server.stop(true);
  }
  expect(asked).toBe(2);
});

const upgradable = binaryHas("the blue/green run of the template unit", ["--reuse-port", "--node-id"]);

test.if(upgradable && curl !== null)("the template's commands: green starts beside blue, ExecStartPost waits for it, blue drains", async () => {
  const [binary, ...flags] = directive("ExecStart", "blue").split(" ");
  expect(binary).toBe(INSTALLED);
  expect(flags).toContain("--reuse-port");
  const port = freePort();
  const range = portRange();
  const colour = async (name: string) => {
    const admin = freePort();
    const post = startPost(name, admin);
    const environment = {
      ...Object.fromEntries(parseEnvExample().active),
      ...Object.fromEntries(parseEnvExample(readFileSync(resolve(DIR, `${name}.env`), "utf8")).active),
      METRICS_LISTEN: `127.0.0.1:${admin}`,
      ALLOW_SNI_SUFFIX: "unit.test",
    };
    const proxy = await startProxy([...directive("ExecStart", name).split(" ").slice(1), "--listen", `127.0.0.1:${port}`, "--port-range", range], environment);
    expect(await post.done()).toBe(0);
    const status = (await (await fetch(`http://127.0.0.1:${admin}/status`)).json()) as { node_id: string };
    expect(status.node_id).toBe(`${hostname()}:${name}`);
    return proxy;
  };
  const blue = await colour("blue");
  const green = await colour("green");
  expect([blue.port, green.port]).toEqual([port, port]);
  expect(await blue.stop()).toBe(0);
  const socket = await rawConnect(green.port);
  const sni = `db-${unique()}.unit.test`;
  await within(5000, echoRoundTrip(socket, records(clientHello({ names: [sni] }))), "a client served by green after blue left");
  socket.destroy();
  expect(await green.stop()).toBe(0);
});

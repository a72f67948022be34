// deploy/haproxy/haproxy.cfg: HAProxy accepts it, and run for real in front of two proxies (its example addresses
// replaced) its health checks pass, clients are spread round robin with their real address in a PROXY v2 header,
// and a client arriving while one proxy drains is served by the other.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { eventually } from "../helpers/admin.ts";
import { echoRoundTrip, tlsClient } from "../helpers/clients.ts";
import { tlsEchoServer, type Backend } from "../helpers/servers.ts";
import type { Socket } from "bun";
import { within } from "../helpers/deadline.ts";
import { DEPLOY, run, tool } from "./tools.ts";

const CONFIG = resolve(DEPLOY, "haproxy", "haproxy.cfg");
const haproxy = tool("haproxy", "haproxy");
const SETPRIV = Bun.which("setpriv");

/** The operators' file with its example addresses swapped for the test's, plus a stats socket to read checks from. */
function testConfig(front: number, proxies: readonly number[], socket: string): string {
  let text = readFileSync(CONFIG, "utf8");
  const swaps: [string, string][] = [
    ["global\n", `global\n    stats socket ${socket} level admin\n`],
    ["bind :19000", `bind 127.0.0.1:${front}`],
    ["server proxy1 10.0.0.11:19000", `server proxy1 127.0.0.1:${proxies[0]}`],
    ["server proxy2 10.0.0.12:19000", `server proxy2 127.0.0.1:${proxies[1]}`],
  ];
  for (const [from, to] of swaps) {
    if (!text.includes(from)) throw new Error(`${CONFIG} no longer has ${JSON.stringify(from)}`);
    text = text.replace(from, to);
  }
  return text;
}

/** One command on HAProxy's stats socket, answered until it closes. */
async function ask(socket: string, command: string): Promise<string> {
  let answer = "";
  await new Promise<void>((resolveClose, reject) => {
    Bun.connect({ unix: socket, socket: {
      open: (s) => void s.write(`${command}\n`),
      data: (_s, chunk) => void (answer += new TextDecoder().decode(chunk)),
      close: () => resolveClose(),
      connectError: (_s, error) => reject(error),
    } }).catch(reject);
  });
  return answer;
}

/** Each server of the backend: its status and its last check's result, from `show stat`'s CSV. */
async function servers(socket: string): Promise<Record<string, { status: string; check: string }>> {
  const [header, ...lines] = (await ask(socket, "show stat")).replace(/^# /, "").trim().split("\n");
  const columns = (header ?? "").split(",");
  const at = (name: string) => columns.indexOf(name);
  return Object.fromEntries(lines.map((line) => line.split(","))
    .filter((fields) => fields[0] === "tunnel_proxies" && fields[1] !== "BACKEND")
    .map((fields) => [fields[1], { status: fields[at("status")] ?? "", check: fields[at("check_status")] ?? "" }]));
}

/**
 * The backend's side of a PROXY v2 header: the proxies pass the balancer's header on, so the TLS backend sits behind
 * this, which takes the header off (noting the client address it names) and forwards the rest to `target`.
 */
function proxyV2Unwrapper(target: number): Backend & { sources: string[] } {
  const sources: string[] = [];
  type Link = { pending: Uint8Array; upstream: Promise<Socket<undefined>> | null };
  const listener = Bun.listen<Link>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      open: (client) => void (client.data = { pending: new Uint8Array(0), upstream: null }),
      data(client, chunk) {
        const link = client.data;
        if (link.upstream !== null) return void link.upstream.then((up) => up.write(chunk));
        link.pending = Buffer.concat([link.pending, chunk]);
        const length = link.pending.length >= 16 ? 16 + ((link.pending[14] as number) << 8) + (link.pending[15] as number) : Infinity;
        if (link.pending.length < length) return;
        // Version 2, command PROXY (0x21), TCP over IPv4 (0x11): the source address is bytes 16-19.
        if (link.pending[12] === 0x21 && link.pending[13] === 0x11) sources.push([...link.pending.subarray(16, 20)].join("."));
        const rest = link.pending.subarray(length);
        link.upstream = Bun.connect({ hostname: "127.0.0.1", port: target, socket: {
          binaryType: "uint8array",
          open: (up) => void up.write(rest),
          data: (_up, bytes) => void client.write(bytes),
          close: () => void client.end(),
        } });
      },
      close: (client) => void client.data.upstream?.then((up) => up.end()),
    },
  });
  return { port: listener.port, sources, close: () => listener.stop(true) };
}

test.if(haproxy !== null)("haproxy -c accepts the file as shipped", async () => {
  expect(await run([haproxy as string, "-c", "-f", CONFIG])).toMatchObject({ code: 0, out: expect.stringContaining("Configuration file is valid") });
});

describe.skipIf(haproxy === null)("HAProxy in front of two proxies", () => {
  let backend: Backend;
  let unwrapper: ReturnType<typeof proxyV2Unwrapper>;
  let proxies: ProxyProcess[];
  let balancer: ReturnType<typeof Bun.spawn>;
  let front: number;
  let dir: string;
  let socket: string;

  beforeAll(async () => {
    backend = await tlsEchoServer();
    unwrapper = proxyV2Unwrapper(backend.port);
    const env = { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${unwrapper.port}` };
    proxies = await Promise.all([0, 1].map(() => startProxy(["--trusted-proxies", "127.0.0.1"], env)));
    dir = mkdtempSync(join(tmpdir(), "ttp-deploy-haproxy-"));
    socket = join(dir, "admin.sock");
    front = freePort();
    writeFileSync(join(dir, "haproxy.cfg"), testConfig(front, proxies.map((p) => p.port), socket));
    const argv = [...(SETPRIV === null ? [] : [SETPRIV, "--pdeathsig", "SIGKILL", "--"]), haproxy as string, "-db", "-f", join(dir, "haproxy.cfg")];
    balancer = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  });
  afterAll(async () => {
    balancer?.kill("SIGKILL");
    await Promise.all((proxies ?? []).map((p) => p.stop()));
    unwrapper?.close();
    backend?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true });
  });

  test("health checks pass, clients go round robin, each proxy sees the client; a draining proxy's share goes to the other", async () => {
    const healthy = (state: Record<string, { status: string; check: string }>) =>
      ["proxy1", "proxy2"].every((name) => state[name]?.status === "UP" && state[name]?.check === "L4OK");
    await eventually(() => servers(socket).catch(() => ({})), healthy, 15_000);

    for (const round of [1, 2]) {
      const client = await within(5000, tlsClient(front, "db-1.demo.test"), `TLS client ${round} through HAProxy`);
      expect((await within(5000, echoRoundTrip(client, Buffer.from("hello")), "the echo")).toString()).toBe("hello");
      client.destroy();
    }
    const served = await Promise.all(proxies.map((p) => p.waitFor((l) => l.msg === "connection" && l.outcome === "proxied")));
    for (const line of served) expect(line).toMatchObject({ client: "127.0.0.1", proxy_src: "127.0.0.1", sni: "db-1.demo.test" });
    expect(unwrapper.sources).toEqual(["127.0.0.1", "127.0.0.1"]);

    const [draining, other] = proxies as [ProxyProcess, ProxyProcess];
    draining.proc.kill("SIGTERM");
    await draining.waitFor((l) => l.msg === "draining");
    for (const round of [1, 2]) {
      const client = await within(10_000, tlsClient(front, "db-1.demo.test"), `TLS client ${round} while proxy1 drains`);
      expect((await within(5000, echoRoundTrip(client, Buffer.from("again")), "the echo")).toString()).toBe("again");
      client.destroy();
    }
    await eventually(() => other.lines.filter((l) => l.msg === "connection" && l.outcome === "proxied").length, (n) => n === 3);
  });
});

// The service token in the environment reaches Cloudflare's edge only for hostnames under --allow-sni-suffix: the real
// cloudflared sends it as Access headers for an allowed SNI, and a client-chosen SNI outside never starts one. A token
// without the suffix is a configuration error.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { proxyCommand, readLogLines, type LogLine, type ProxyProcess } from "../helpers/proxy-process.ts";
import { rawConnect, readUntilClose, tlsClient, echoRoundTrip } from "../helpers/clients.ts";
import { clientHello, records } from "../helpers/builders.ts";
import { tlsEchoServer } from "../helpers/servers.ts";
import { within } from "../helpers/deadline.ts";
import { ALERT_UNRECOGNIZED_NAME } from "../helpers/wire.ts";
import { realChain, realSkipped, type RealChain } from "./harness.ts";

const TOKEN = { TUNNEL_SERVICE_TOKEN_ID: "0f1e2d3c4b5a.access", TUNNEL_SERVICE_TOKEN_SECRET: "s3cr3t-9a8b7c6d5e4f3a2b1c0d" };
const ALLOWED = "db-7.demo.test";
/** A name a client may send that the operator never meant to reach with the token; the edge would answer it. */
const OUTSIDE = "attacker.example.org";

describe.skipIf(realSkipped())("the service token and --allow-sni-suffix, with the real cloudflared", () => {
  let chain: RealChain;
  let proxy: ProxyProcess;
  let backend: Awaited<ReturnType<typeof tlsEchoServer>>;

  beforeAll(async () => {
    backend = await tlsEchoServer();
    chain = realChain();
    chain.serve(`cft-${ALLOWED}`, { kind: "bridge", port: backend.port });
    chain.serve(`cft-${OUTSIDE}`, { kind: "bridge", port: backend.port });
    // cloudflared at debug level prints the requests it sends, Access headers included: the proxy logs its output.
    proxy = await chain.proxy(["--allow-sni-suffix", ".demo.test", "--log-level", "debug", "--cloudflared-arg", "--loglevel", "--cloudflared-arg", "debug"], TOKEN);
  });
  afterAll(async () => {
    await proxy?.stop();
    chain?.close();
    backend?.close();
  });

  test("an SNI under the suffix: cloudflared presents the token to the edge", async () => {
    const socket = await tlsClient(proxy.port, ALLOWED);
    expect((await echoRoundTrip(socket, new TextEncoder().encode("with token"))).toString()).toBe("with token");
    socket.destroy();
    const sent = chain.edge.requests.filter((r) => r.host === `cft-${ALLOWED}`);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ method: "GET", upgrade: true, clientId: TOKEN.TUNNEL_SERVICE_TOKEN_ID, clientSecret: TOKEN.TUNNEL_SERVICE_TOKEN_SECRET });
    expect(proxy.lines.some((l) => l.msg === "cloudflared" && /Cf-Access-Client-Secret/i.test(String(l.line)))).toBe(true);
    expect(JSON.stringify(proxy.lines)).not.toContain(TOKEN.TUNNEL_SERVICE_TOKEN_SECRET);
  });

  test("an SNI outside the suffix: refused, no cloudflared started, the edge sees nothing", async () => {
    const before = chain.edge.requests.length;
    const socket = await rawConnect(proxy.port);
    const reply = readUntilClose(socket);
    socket.write(records(clientHello({ names: [OUTSIDE] })));
    expect([...(await within(10_000, reply, "the refusal"))]).toEqual(ALERT_UNRECOGNIZED_NAME);
    expect(await proxy.waitFor((l) => l.msg === "connection" && l.sni === OUTSIDE)).toMatchObject({ outcome: "refused_not_allowed" });
    expect(proxy.lines.filter((l) => l.msg === "tunnel starting").map((l) => l.tunnel)).toEqual([`cft-${ALLOWED}`]);
    expect(chain.edge.requests.length).toBe(before);
  });
});

test("a service token without --allow-sni-suffix is refused at start: exit 2, one line naming the flag, no secret", async () => {
  const argv = [...proxyCommand(), "--listen", "127.0.0.1:0", "--log-format", "json"];
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe", env: { ...process.env, ...TOKEN, ALLOW_SNI_SUFFIX: "" } });
  const lines: LogLine[] = [];
  let listening!: () => void;
  const started = new Promise<"listening">((resolve) => (listening = () => resolve("listening")));
  const read = readLogLines(proc.stderr, (line) => (lines.push(line), line.msg === "listening" && listening()));
  try {
    const outcome = await within(15_000, Promise.race([proc.exited, started]), "the proxy's exit at start");
    expect(outcome).toBe(2);
  } finally {
    proc.kill("SIGKILL");
  }
  await read;
  expect(lines).toHaveLength(1);
  expect(lines[0]?.msg).toContain("--allow-sni-suffix");
  expect(JSON.stringify(lines)).not.toContain(TOKEN.TUNNEL_SERVICE_TOKEN_SECRET);
});

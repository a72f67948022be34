// The service token in the environment reaches Cloudflare's edge only for hostnames under --allow-sni-suffix: the real
// cloudflared sends it as Access headers for an allowed SNI, and a client-chosen SNI outside never starts one. A token
// without the suffix is a configuration error.
import { describe, expect, test } from "bun:test";
import { proxyCommand, readLogLines, type LogLine } from "../helpers/proxy-process.ts";
import { rawConnect, readUntilClose, tlsClient, echoRoundTrip } from "../helpers/clients.ts";
import { clientHello, records } from "../helpers/builders.ts";
import { tlsEchoServer } from "../helpers/servers.ts";
import { within } from "../helpers/deadline.ts";
import { ALERT_UNRECOGNIZED_NAME } from "../helpers/wire.ts";
import { bridgedChain, realSkipped } from "./harness.ts";

const TOKEN = { TUNNEL_SERVICE_TOKEN_ID: "0f1e2d3c4b5a.access", TUNNEL_SERVICE_TOKEN_SECRET: "s3cr3t-9a8b7c6d5e4f3a2b1c0d" };
const ALLOWED = "db-7.demo.test";
/** A name a client may send that the operator never meant to reach with the token; the edge would answer it. */
const OUTSIDE = "attacker.example.org";

describe.skipIf(realSkipped())("the service token and --allow-sni-suffix, with the real cloudflared", () => {
  // cloudflared at debug level prints the requests it sends, Access headers included: the proxy logs its output.
  const args = ["--allow-sni-suffix", ".demo.test", "--log-level", "debug", "--cloudflared-arg", "--loglevel", "--cloudflared-arg", "debug"];
  const real = bridgedChain(tlsEchoServer, [`cft-${ALLOWED}`, `cft-${OUTSIDE}`], args, TOKEN);

  test("an SNI under the suffix: cloudflared presents the token to the edge", async () => {
    const socket = await tlsClient(real.proxy.port, ALLOWED);
    expect((await echoRoundTrip(socket, new TextEncoder().encode("with token"))).toString()).toBe("with token");
    socket.destroy();
    const sent = real.chain.edge.requests.filter((r) => r.host === `cft-${ALLOWED}`);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ method: "GET", upgrade: true, clientId: TOKEN.TUNNEL_SERVICE_TOKEN_ID, clientSecret: TOKEN.TUNNEL_SERVICE_TOKEN_SECRET });
    expect(real.proxy.lines.some((l) => l.msg === "cloudflared" && /Cf-Access-Client-Secret/i.test(String(l.line)))).toBe(true);
    expect(JSON.stringify(real.proxy.lines)).not.toContain(TOKEN.TUNNEL_SERVICE_TOKEN_SECRET);
  });

  test("an SNI outside the suffix: refused, no cloudflared started, the edge sees nothing", async () => {
    const before = real.chain.edge.requests.length;
    const socket = await rawConnect(real.proxy.port);
    const reply = readUntilClose(socket);
    socket.write(records(clientHello({ names: [OUTSIDE] })));
    expect([...(await within(10_000, reply, "the refusal"))]).toEqual(ALERT_UNRECOGNIZED_NAME);
    expect(await real.proxy.waitFor((l) => l.msg === "connection" && l.sni === OUTSIDE)).toMatchObject({ outcome: "refused_not_allowed" });
    expect(real.proxy.lines.filter((l) => l.msg === "tunnel starting").map((l) => l.tunnel)).toEqual([`cft-${ALLOWED}`]);
    expect(real.chain.edge.requests.length).toBe(before);
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

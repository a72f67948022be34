// curl → HAProxy (send-proxy-v2) → the proxy (trusting it) → the real cloudflared → the edge stand-in → a TLS backend
// that takes the PROXY header the proxy replays: the client's own address crosses the whole chain.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type ProxyProcess } from "../helpers/proxy-process.ts";
import { testCerts } from "../helpers/certs.ts";
import { rawConnect } from "../helpers/clients.ts";
import { eventually } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { proxiedHttpsBackend } from "./backends.ts";
import { realChain, realSkipped, realUnavailable, type RealChain } from "./harness.ts";

const toolMissing = realUnavailable !== null ? null : Bun.which("haproxy") === null ? "haproxy" : Bun.which("curl") === null ? "curl" : null;
if (toolMissing !== null) console.warn(`SKIPPED HAProxy through the real cloudflared: ${toolMissing} not installed`);
test.if(toolMissing !== null && process.env.CI === "true")("CI has HAProxy and curl for the real chain", () => {
  throw new Error(`HAProxy through the real cloudflared cannot run in CI: ${toolMissing} not installed`);
});

const SNI = "web.demo.test";
/** curl's source address: what the PROXY header must carry to the backend. */
const CLIENT_ADDRESS = "127.0.0.9";

async function startHaproxy(proxyPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "ttp-real-haproxy-"));
  const port = freePort();
  const config = [
    "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 30s", "  timeout server 30s",
    "frontend clients", `  bind 127.0.0.1:${port}`, "  default_backend proxy",
    "backend proxy", `  server ttp 127.0.0.1:${proxyPort} send-proxy-v2`,
  ].join("\n");
  writeFileSync(join(dir, "haproxy.cfg"), `${config}\n`);
  const proc = Bun.spawn(["haproxy", "-db", "-f", join(dir, "haproxy.cfg")], { stdout: "ignore", stderr: "pipe" });
  await eventually(() => rawConnect(port).then((s) => (s.destroy(), true), () => false), (up) => up || proc.exitCode !== null, 10_000);
  if (proc.exitCode !== null) throw new Error(`haproxy exited ${proc.exitCode}: ${await new Response(proc.stderr).text()}`);
  return {
    port,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.skipIf(realSkipped() || toolMissing !== null)("HAProxy in front, the real cloudflared behind", () => {
  let chain: RealChain;
  let proxy: ProxyProcess;
  let backend: Awaited<ReturnType<typeof proxiedHttpsBackend>>;
  let haproxy: Awaited<ReturnType<typeof startHaproxy>>;

  beforeAll(async () => {
    backend = await proxiedHttpsBackend();
    chain = realChain();
    chain.serve(`cft-${SNI}`, { kind: "bridge", port: backend.port });
    proxy = await chain.proxy(["--log-level", "info", "--trusted-proxies", "127.0.0.1"]);
    haproxy = await startHaproxy(proxy.port);
  });
  afterAll(async () => {
    await haproxy?.stop();
    await proxy?.stop();
    chain?.close();
    backend?.close();
  });

  test("curl's address reaches the backend in the replayed PROXY v2 header; TLS verifies end to end", async () => {
    const curl = Bun.spawn(
      ["curl", "-sS", "--max-time", "20", "--interface", CLIENT_ADDRESS, "--cacert", testCerts().caPath,
        "--resolve", `${SNI}:${haproxy.port}:127.0.0.1`, `https://${SNI}:${haproxy.port}/`],
      { stdout: "pipe", stderr: "pipe" },
    );
    const [out, err, code] = await within(30_000, Promise.all([new Response(curl.stdout).text(), new Response(curl.stderr).text(), curl.exited]), "curl");
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(out).toMatch(new RegExp(`^PROXY source ${CLIENT_ADDRESS.replaceAll(".", "\\.")}:\\d+\\n$`));
    expect(backend.sources).toHaveLength(1);
    const summary = await proxy.waitFor((l) => l.msg === "connection" && l.sni === SNI);
    expect(summary).toMatchObject({ client: "127.0.0.1", proxy_src: CLIENT_ADDRESS, tunnel: `cft-${SNI}`, outcome: "proxied" });
    expect(chain.edge.requests.filter((r) => r.host === `cft-${SNI}` && r.upgrade)).toHaveLength(1);
  });
});

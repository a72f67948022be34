// `bun run demo`: the proxy, a local TLS backend and the fake cloudflared on loopback, and one real TLS client
// with SNI db-1.demo.test, so a newcomer can watch a tunnel start and a connection pass without a Cloudflare account.
// `bun run demo --real`: the same through Cloudflare's real cloudflared, with a local stand-in for Cloudflare's edge
// (tests/real/harness.ts); it says why and exits 1 when that cannot run here.
import { testCerts } from "../tests/helpers/certs.ts";
import { tlsEchoServer } from "../tests/helpers/servers.ts";
import { startProxy, type LogLine, type ProxyProcess } from "../tests/helpers/proxy-process.ts";
import { echoRoundTrip, tlsClient } from "../tests/helpers/clients.ts";
import { REAL_CLOUDFLARED, realChain, realUnavailable, type RealChain } from "../tests/real/harness.ts";

const SNI = "db-1.demo.test";
const say = (text: string) => console.log(`demo: ${text}`);
const real = process.argv.slice(2).includes("--real");

if (real && realUnavailable !== null) {
  say(`--real cannot run here: ${realUnavailable}`);
  process.exit(1);
}

const backend = await tlsEchoServer(["postgresql"]);
say(`TLS backend (certificate for *.demo.test) on 127.0.0.1:${backend.port}`);
const args = ["--metrics-listen", "127.0.0.1:0", "--log-level", "info"];
let chain: RealChain | null = null;
let proxy: ProxyProcess;
if (real) {
  chain = realChain();
  chain.serve(`cft-${SNI}`, { kind: "bridge", port: backend.port });
  proxy = await chain.proxy(args);
  say(`edge stand-in on ${chain.address}:443 (cft-${SNI} resolves there inside the proxy's own mount namespace)`);
  say(`proxy on 127.0.0.1:${proxy.port}, admin on 127.0.0.1:${proxy.adminPort}, cloudflared = ${REAL_CLOUDFLARED} (the real one)`);
} else {
  proxy = await startProxy(args, { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${backend.port}` });
  say(`proxy on 127.0.0.1:${proxy.port}, admin on 127.0.0.1:${proxy.adminPort}, cloudflared = tests/fake-cloudflared.ts`);
}

const summaries = () => proxy.lines.filter((l) => l.msg === "connection");
for (const [index, attempt] of ["cold (tunnel starts)", "warm (tunnel reused)"].entries()) {
  const started = performance.now();
  const socket = await tlsClient(proxy.port, SNI, { alpn: ["postgresql"] });
  const handshakeMs = performance.now() - started;
  const reply = await echoRoundTrip(socket, new TextEncoder().encode("hello through the tunnel"));
  socket.end();
  await proxy.waitFor(() => summaries().length > index);
  const summary = summaries()[index] as LogLine;
  say(`${attempt}: TLS handshake with SNI ${SNI} verified=${socket.authorized} alpn=${socket.alpnProtocol} in ${handshakeMs.toFixed(1)} ms`);
  say(`  echoed "${reply.toString()}"; proxy summary: tunnel=${summary.tunnel} port=${summary.port} bytes_in=${summary.bytes_in} bytes_out=${summary.bytes_out} outcome=${summary.outcome}`);
}

const ready = proxy.lines.find((l) => l.msg === "tunnel ready");
say(`tunnel ${ready?.tunnel} became ready on port ${ready?.port} (pid ${ready?.pid}) after ${ready?.startup_ms} ms`);
if (chain !== null) {
  const upgrades = chain.edge.requests.filter((r) => r.upgrade).map((r) => `${r.method} wss://${r.host}${r.path}`);
  say(`the edge stand-in received ${upgrades.length} WebSocket upgrades from cloudflared: ${upgrades.join(", ")}`);
}
const tunnels = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/tunnels`)).json();
say(`GET /tunnels → ${JSON.stringify(tunnels)}`);
const code = await proxy.stop();
chain?.close();
backend.close();
say(`proxy stopped with status ${code}; the tunnel process was stopped with it`);
say(`certificates used: ${testCerts().dir}`);

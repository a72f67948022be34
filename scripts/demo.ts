// `bun run demo`: the proxy, a local TLS backend and the fake cloudflared on loopback, and one real TLS client
// with SNI db-1.demo.test, so a newcomer can watch a tunnel start and a connection pass without a Cloudflare account.
import { testCerts } from "../tests/helpers/certs.ts";
import { tlsEchoServer } from "../tests/helpers/servers.ts";
import { startProxy } from "../tests/helpers/proxy-process.ts";
import { echoRoundTrip, tlsClient } from "../tests/helpers/clients.ts";

const SNI = "db-1.demo.test";
const say = (text: string) => console.log(`demo: ${text}`);

const backend = await tlsEchoServer(["postgresql"]);
say(`TLS backend (certificate for *.demo.test) on 127.0.0.1:${backend.port}`);
const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0", "--log-level", "info"], {
  FAKE_CF_MODE: "forward",
  FAKE_CF_FORWARD: `127.0.0.1:${backend.port}`,
});
say(`proxy on 127.0.0.1:${proxy.port}, admin on 127.0.0.1:${proxy.adminPort}, cloudflared = tests/fake-cloudflared.ts`);

for (const attempt of ["cold (tunnel starts)", "warm (tunnel reused)"]) {
  const started = performance.now();
  const socket = await tlsClient(proxy.port, SNI, { alpn: ["postgresql"] });
  const handshakeMs = performance.now() - started;
  const reply = await echoRoundTrip(socket, new TextEncoder().encode("hello through the tunnel"));
  socket.end();
  const summary = await proxy.waitFor((l) => l.msg === "connection" && proxy.lines.filter((x) => x.msg === "connection").length >= (attempt.startsWith("cold") ? 1 : 2));
  say(`${attempt}: TLS handshake with SNI ${SNI} verified=${socket.authorized} alpn=${socket.alpnProtocol} in ${handshakeMs.toFixed(1)} ms`);
  say(`  echoed "${reply.toString()}"; proxy summary: tunnel=${summary.tunnel} port=${summary.port} bytes_in=${summary.bytes_in} bytes_out=${summary.bytes_out} outcome=${summary.outcome}`);
}

const ready = proxy.lines.find((l) => l.msg === "tunnel ready");
say(`tunnel ${ready?.tunnel} became ready on port ${ready?.port} (pid ${ready?.pid}) after ${ready?.startup_ms} ms`);
const tunnels = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/tunnels`)).json();
say(`GET /tunnels → ${JSON.stringify(tunnels)}`);
const code = await proxy.stop();
backend.close();
say(`proxy stopped with status ${code}; the tunnel process was stopped with it`);
say(`certificates used: ${testCerts().dir}`);

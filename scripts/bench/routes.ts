// The three routes to the same backend: direct to the warm tunnel's port, through our binary, through HAProxy.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startProxy, type ProxyProcess } from "../../tests/helpers/proxy-process.ts";
import { procNetProbe } from "../../src/supervisor/proc-net.ts";
import type { TunnelInfo } from "../../src/supervisor/tunnel.ts";

export const SUFFIX = "bench.test";
export const HOSTS = { echo: `echo.${SUFFIX}`, sink: `sink.${SUFFIX}`, slow: `slow.${SUFFIX}` } as const;

export interface Routes {
  readonly ours: ProxyProcess;
  readonly stateDir: string;
  /** Local ports of the warm tunnels, by SNI. */
  readonly tunnelPorts: Record<keyof typeof HOSTS, number>;
}

/** A sink that reads at `bytesPerSecond` and answers its count at FIN: the slow backend behind the slow tunnel. */
export function slowSink(bytesPerSecond: number): { port: number; stop(): void } {
  const listener = Bun.listen<{ count: number }>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open: (socket) => void (socket.data = { count: 0 }),
      data(socket, chunk) {
        socket.data.count += chunk.length;
        socket.pause();
        setTimeout(() => socket.resume(), (chunk.length / bytesPerSecond) * 1000);
      },
      end(socket) {
        socket.write(`${socket.data.count}\n`);
        socket.end();
      },
    },
  });
  return { port: listener.port, stop: () => listener.stop(true) };
}

export async function startOurs(slowPort: number, warm: (port: number, sni: string) => Promise<unknown>): Promise<Routes> {
  const stateDir = mkdtempSync(join(tmpdir(), "ttp-bench-"));
  const ours = await startProxy(
    ["--metrics-listen", "127.0.0.1:0", "--log-level", "info", "--idle-timeout", "1h", "--max-connections", "0", "--port-range", "24000-24099"],
    {
      FAKE_CF_MODE: "echo",
      FAKE_CF_MODE_MAP: JSON.stringify({ [`cft-${HOSTS.sink}`]: "sink", [`cft-${HOSTS.slow}`]: "forward" }),
      FAKE_CF_FORWARD: `127.0.0.1:${slowPort}`,
      FAKE_CF_STATE_DIR: stateDir,
    },
  );
  for (const sni of Object.values(HOSTS)) await warm(ours.port, sni);
  const tunnels = (await (await fetch(`http://127.0.0.1:${ours.adminPort}/tunnels`)).json()) as TunnelInfo[];
  const portOf = (sni: string) => tunnels.find((t) => t.hostname === `cft-${sni}`)?.port as number;
  return { ours, stateDir, tunnelPorts: { echo: portOf(HOSTS.echo), sink: portOf(HOSTS.sink), slow: portOf(HOSTS.slow) } };
}

export interface Haproxy {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** HAProxy routing by SNI (tcp-request inspect-delay + req_ssl_sni) to the same tunnel ports; null when absent. */
export async function startHaproxy(ports: Routes["tunnelPorts"]): Promise<Haproxy | null> {
  const binary = Bun.which("haproxy");
  if (binary === null) return null;
  const port = freePort();
  const dir = mkdtempSync(join(tmpdir(), "ttp-haproxy-"));
  const config = `global
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
frontend fe
  bind 127.0.0.1:${port}
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
${(Object.keys(ports) as (keyof typeof ports)[]).map((k) => `  use_backend be_${k} if { req_ssl_sni -i ${HOSTS[k]} }`).join("\n")}
${(Object.keys(ports) as (keyof typeof ports)[]).map((k) => `backend be_${k}\n  server s 127.0.0.1:${ports[k]}`).join("\n")}
`;
  writeFileSync(join(dir, "haproxy.cfg"), config);
  const proc = Bun.spawn([binary, "-db", "-f", join(dir, "haproxy.cfg")], { stdout: "ignore", stderr: "pipe" });
  const probe = procNetProbe();
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await probe.isListening(port)) break;
    if (proc.exitCode !== null) throw new Error(`haproxy exited: ${await new Response(proc.stderr).text()}`);
    await Bun.sleep(10);
  }
  return {
    port,
    pid: proc.pid,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

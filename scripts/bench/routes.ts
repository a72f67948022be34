// The processes of one bench run, all fresh: the backend (go/backend.go), our binary at each worker count, the Go
// original, HAProxy and the bare Bun forwarder — every route ending in the same backend process. Our proxy and the Go
// original start the cloudflared stand-in (go/tunnel.go), which has that backend bind the tunnel port. Logs go to
// files, not to the bench process.
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuMsOf, peersBinary } from "./peers.ts";
import { epochMs, firstLine, freePort, readJsonLines, spawn, stopAndRemove, stopProcess, waitListening } from "./processes.ts";
import type { RealCloudflared } from "./real.ts";
import type { OursSpec } from "./run.ts";

export const SUFFIX = "bench.test";
export const HOSTS = { echo: `echo.${SUFFIX}`, sink: `sink.${SUFFIX}`, slow: `slow.${SUFFIX}` } as const;
export type Tunnel = keyof typeof HOSTS;

const HERE = import.meta.dir;

export interface Backend {
  readonly pid: number;
  /** Its control port, which the cloudflared stand-in asks to bind the tunnel port. */
  readonly control: number;
  /** A port of the backend serving `mode`, for the routes that are not a tunnel proxy. */
  listen(mode: Tunnel): Promise<number>;
  cpuMs(): number;
  stop(): Promise<void>;
}

export async function startBackend(): Promise<Backend> {
  const proc = spawn([peersBinary(), "backend"]);
  const control = Number(await firstLine(proc));
  return {
    pid: proc.pid,
    control,
    async listen(mode) {
      const answer = await fetch(`http://127.0.0.1:${control}/listen?port=0&mode=${mode}`);
      return ((await answer.json()) as { port: number }).port;
    },
    cpuMs: () => cpuMsOf(proc.pid),
    stop: () => stopProcess(proc),
  };
}

/** A proxy under test: where it listens and its process, for RSS and CPU time. */
export interface Route {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** A proxy that starts tunnels (ours, the Go original): when it started the one for a tunnel hostname, epoch ms. */
export interface TunnelProxy extends Route {
  readonly stateDir: string;
  tunnelStartedAt(hostname: string): number | null;
}

/** The environment of a proxy's tunnels: the backend to bind through, where to write bind times. */
function tunnelEnv(backend: Backend, stateDir: string): Record<string, string> {
  return { BENCH_BACKEND: String(backend.control), BENCH_STATE_DIR: stateDir };
}

/** Our binary with `spec.workers` edges and the default log level (JSON, to a file), its tunnels the stand-in's. */
export async function startOurs(spec: OursSpec, backend: Backend, portBase: number, real: RealCloudflared | null): Promise<TunnelProxy> {
  const stateDir = mkdtempSync(join(tmpdir(), "ttp-bench-"));
  const logFile = join(stateDir, "proxy.log");
  const port = freePort();
  const argv = [
    spec.binary,
    "--listen", `127.0.0.1:${port}`,
    "--log-format", "json",
    "--log-level", "info",
    "--cloudflared-path", peersBinary(),
    "--port-range", `${portBase}-${portBase + 99}`,
    "--idle-timeout", "1h",
    "--max-connections", "0",
    "--workers", String(spec.workers),
    ...(spec.args ?? []),
  ];
  const proc = spawn(real === null ? argv : real.wrap(argv), {
    env: { ...tunnelEnv(backend, stateDir), ...real?.env, BUN_OPTIONS: spec.bunOptions ?? "" },
    stderr: logFile,
    stdout: "/dev/null",
  });
  await waitListening(proc, port, spec.workers, () => `our proxy did not start; log:\n${readFileSync(logFile, "utf8")}`);
  const tunnelStartedAt = (hostname: string) => {
    const line = readJsonLines(logFile).find((l) => l.msg === "tunnel starting" && l.tunnel === hostname);
    return line === undefined ? null : epochMs(String(line.ts));
  };
  return { port, pid: proc.pid, stateDir, tunnelStartedAt, stop: () => stopAndRemove(proc, stateDir) };
}

/**
 * The Go program we replace (its binary given with --go-original), configured through its environment: JSON logs
 * (to stdout, a file here), its tunnel port range, the same idle timeout as ours. It runs `cloudflared` from PATH, so
 * PATH starts with a directory whose `cloudflared` is the stand-in.
 */
export async function startGoOriginal(binary: string, backend: Backend, portBase: number, real: RealCloudflared | null): Promise<TunnelProxy> {
  const stateDir = mkdtempSync(join(tmpdir(), "ttp-bench-go-"));
  const bin = join(stateDir, "bin");
  mkdirSync(bin);
  symlinkSync(peersBinary(), join(bin, "cloudflared"));
  const logFile = join(stateDir, "proxy.log");
  const port = freePort();
  const env = {
    ...tunnelEnv(backend, stateDir),
    ...real?.env,
    PATH: `${bin}:${process.env.PATH ?? ""}`,
    LISTEN_ADDR: `127.0.0.1:${port}`,
    PORT_RANGE_START: String(portBase),
    PORT_RANGE_END: String(portBase + 99),
    IDLE_TIMEOUT: "1h",
    LOG_FORMAT: "json",
  };
  const proc = spawn(real === null ? [binary] : real.wrap([binary]), { env, stdout: logFile, stderr: join(stateDir, "stderr.log") });
  await waitListening(proc, port, 1, () => `the Go original did not start; stderr:\n${readFileSync(join(stateDir, "stderr.log"), "utf8")}`);
  const tunnelStartedAt = (hostname: string) => {
    const line = readJsonLines(logFile).find((l) => String(l.msg).startsWith(`Starting cloudflared for ${hostname} on `));
    return line === undefined ? null : epochMs(String(line.ts));
  };
  return { port, pid: proc.pid, stateDir, tunnelStartedAt, stop: () => stopAndRemove(proc, stateDir) };
}

/** HAProxy routing by SNI (tcp-request inspect-delay + req_ssl_sni) to the backend's ports; null when absent. */
export async function startHaproxy(ports: Record<Tunnel, number>): Promise<Route | null> {
  const binary = Bun.which("haproxy");
  if (binary === null) return null;
  const port = freePort();
  const dir = mkdtempSync(join(tmpdir(), "ttp-haproxy-"));
  const tunnels = Object.keys(ports) as Tunnel[];
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
${tunnels.map((k) => `  use_backend be_${k} if { req_ssl_sni -i ${HOSTS[k]} }`).join("\n")}
${tunnels.map((k) => `backend be_${k}\n  server s 127.0.0.1:${ports[k]}`).join("\n")}
`;
  writeFileSync(join(dir, "haproxy.cfg"), config);
  const proc = spawn([binary, "-db", "-f", join(dir, "haproxy.cfg")], { stderr: join(dir, "haproxy.log"), stdout: "/dev/null" });
  await waitListening(proc, port, 1, () => `haproxy did not start: ${readFileSync(join(dir, "haproxy.log"), "utf8")}`);
  return { port, pid: proc.pid, stop: () => stopAndRemove(proc, dir) };
}

/** The bare Bun forwarder (bare.ts) to one backend port, with `workers` reusePort listeners. */
export async function startBare(target: number, workers: number): Promise<Route> {
  const proc = spawn([process.execPath, join(HERE, "bare.ts"), String(target), String(workers)]);
  const port = Number(await firstLine(proc));
  return { port, pid: proc.pid, stop: () => stopProcess(proc) };
}

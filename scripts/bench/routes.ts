// The processes of one bench run, all fresh: the backend (backend.ts), our binary at each worker count, HAProxy and the
// bare Bun forwarder — every route ending in the same backend process. Logs go to files, not to the bench process.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { isLoopbackListener, procNetProbe, scanListeners } from "../../src/supervisor/proc-net.ts";
import type { Mode } from "./backend.ts";
import type { OursSpec } from "./run.ts";

export const SUFFIX = "bench.test";
export const HOSTS = { echo: `echo.${SUFFIX}`, sink: `sink.${SUFFIX}`, slow: `slow.${SUFFIX}` } as const;
export type Tunnel = keyof typeof HOSTS;

const HERE = import.meta.dir;
/** Every child dies with the bench, even when the bench is killed (parent-death signal, as the tests do). */
const DIE_WITH_BENCH = Bun.which("setpriv") === null ? [] : [Bun.which("setpriv") as string, "--pdeathsig", "SIGKILL", "--"];
const children = new Set<Subprocess>();
process.on("exit", () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

function spawn(argv: string[], options: { env?: Record<string, string>; stderr?: string; stdout?: "pipe" | "ignore" } = {}): Subprocess<"ignore", "pipe" | "ignore", "ignore"> {
  const proc = Bun.spawn([...DIE_WITH_BENCH, ...argv], {
    stdin: "ignore",
    stdout: options.stdout ?? "pipe",
    stderr: options.stderr === undefined ? "ignore" : Bun.file(options.stderr),
    env: { ...process.env, ...options.env },
  });
  children.add(proc);
  void proc.exited.then(() => children.delete(proc));
  return proc as Subprocess<"ignore", "pipe" | "ignore", "ignore">;
}

async function firstLine(proc: Subprocess<"ignore", "pipe" | "ignore", "ignore">): Promise<string> {
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`process ${proc.pid} exited before printing its port`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.slice(0, text.indexOf("\n"));
}

async function stopProcess(proc: Subprocess): Promise<void> {
  if (proc.exitCode === null) proc.kill("SIGTERM");
  await Promise.race([proc.exited, Bun.sleep(15_000).then(() => proc.kill("SIGKILL"))]);
}

export interface Backend {
  readonly control: number;
  readonly pid: number;
  /** A port of the backend serving `mode`, for the routes that are not our proxy. */
  listen(mode: Mode): Promise<number>;
  stop(): Promise<void>;
}

export async function startBackend(): Promise<Backend> {
  const proc = spawn([process.execPath, join(HERE, "backend.ts")]);
  const control = Number(await firstLine(proc));
  return {
    control,
    pid: proc.pid,
    async listen(mode) {
      const answer = await fetch(`http://127.0.0.1:${control}/listen?port=0&mode=${mode}`);
      return ((await answer.json()) as { port: number }).port;
    },
    stop: () => stopProcess(proc),
  };
}

/** A proxy under test: where it listens and its process, for RSS. */
export interface Route {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface Ours extends Route {
  readonly stateDir: string;
  readonly logFile: string;
  /** Log lines so far (JSON), read from the file. */
  logLines(): Record<string, unknown>[];
}

function readJsonLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      continue;
    }
  }
  return out;
}

/** Our binary with `spec.workers` edges and the default log level, its tunnels served by `backend`. */
export async function startOurs(spec: OursSpec, backend: Backend, portBase: number): Promise<Ours> {
  const stateDir = mkdtempSync(join(tmpdir(), "ttp-bench-"));
  const logFile = join(stateDir, "proxy.log");
  const port = freePort();
  const proc = spawn(
    [
      spec.binary,
      "--listen", `127.0.0.1:${port}`,
      "--log-format", "json",
      "--log-level", "info",
      "--cloudflared-path", resolve(HERE, "tunnel.ts"),
      "--port-range", `${portBase}-${portBase + 99}`,
      "--idle-timeout", "1h",
      "--max-connections", "0",
      "--workers", String(spec.workers),
      ...(spec.args ?? []),
    ],
    {
      env: { BENCH_BACKEND: String(backend.control), BENCH_STATE_DIR: stateDir, BUN_OPTIONS: spec.bunOptions ?? "" },
      stderr: logFile,
      stdout: "ignore",
    },
  );
  // Ready once every edge listens (one LISTEN socket per worker), read from /proc/net/tcp: no log line is needed, so
  // any --log-level works.
  const listeners = async () => {
    let count = 0;
    await scanListeners("/proc/net/tcp", (address) => {
      if (isLoopbackListener(address, port)) count++;
      return false;
    });
    return count;
  };
  for (let waited = 0; (await listeners()) < spec.workers; waited += 20) {
    if (proc.exitCode !== null || waited > 15_000) throw new Error(`our proxy did not start; log:\n${readFileSync(logFile, "utf8")}`);
    await Bun.sleep(20);
  }
  return { port, pid: proc.pid, stateDir, logFile, logLines: () => readJsonLines(logFile), stop: () => stopProcess(proc) };
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
  const proc = spawn([binary, "-db", "-f", join(dir, "haproxy.cfg")], { stderr: join(dir, "haproxy.log"), stdout: "ignore" });
  const probe = procNetProbe();
  for (let attempt = 0; !(await probe.isListening(port)); attempt++) {
    if (proc.exitCode !== null || attempt > 500) throw new Error(`haproxy did not start: ${readFileSync(join(dir, "haproxy.log"), "utf8")}`);
    await Bun.sleep(10);
  }
  return { port, pid: proc.pid, stop: () => stopProcess(proc) };
}

/** The bare Bun forwarder (bare.ts) to one backend port, with `workers` reusePort listeners. */
export async function startBare(target: number, workers: number): Promise<Route> {
  const proc = spawn([process.execPath, join(HERE, "bare.ts"), String(target), String(workers)]);
  const port = Number(await firstLine(proc));
  return { port, pid: proc.pid, stop: () => stopProcess(proc) };
}

/** A port nothing listens on right now: the kernel's pick for a throwaway listener. */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Resident set of a process, in bytes. */
export function rssBytes(pid: number): number {
  return statusKiB(pid, "VmRSS") * 1024;
}

/**
 * Its anonymous part (heaps, buffers, JIT code), in bytes. The rest is file-backed: the executable's code pages —
 * clean, shared with every process running the same file, and dropped by the kernel first under memory pressure.
 */
export function anonBytes(pid: number): number {
  return statusKiB(pid, "RssAnon") * 1024;
}

function statusKiB(pid: number, field: string): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0);
}

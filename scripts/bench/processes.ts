// What every process of a bench run needs: spawning it so that it dies with the bench, reading its first line, its
// JSON log lines, waiting for its listener, stopping it, and its memory.
import { existsSync, readFileSync, rmSync } from "node:fs";
import type { Subprocess } from "bun";
import { isLoopbackListener, scanListeners } from "../../src/supervisor/proc-net.ts";

/** Every child dies with the bench, even when the bench is killed (parent-death signal, as the tests do). */
const DIE_WITH_BENCH = Bun.which("setpriv") === null ? [] : [Bun.which("setpriv") as string, "--pdeathsig", "SIGKILL", "--"];
const children = new Set<Subprocess>();
process.on("exit", () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

export type Child = Subprocess<"ignore", "pipe" | "ignore", "ignore">;

export interface SpawnOptions {
  readonly env?: Record<string, string>;
  /** Files for the child's output; stdout is a pipe (for firstLine) unless a file is named. */
  readonly stdout?: string;
  readonly stderr?: string;
}

export function spawn(argv: readonly string[], options: SpawnOptions = {}): Child {
  const proc = Bun.spawn([...DIE_WITH_BENCH, ...argv], {
    stdin: "ignore",
    stdout: options.stdout === undefined ? "pipe" : Bun.file(options.stdout),
    stderr: options.stderr === undefined ? "ignore" : Bun.file(options.stderr),
    env: { ...process.env, ...options.env },
  });
  children.add(proc);
  void proc.exited.then(() => children.delete(proc));
  return proc as Child;
}

export async function firstLine(proc: Child): Promise<string> {
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`process ${proc.pid} exited before printing its first line`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.slice(0, text.indexOf("\n"));
}

export async function stopProcess(proc: Subprocess): Promise<void> {
  if (proc.exitCode === null) proc.kill("SIGTERM");
  await Promise.race([proc.exited, Bun.sleep(15_000).then(() => proc.kill("SIGKILL"))]);
}

/** Stops the process, then removes the directory of its logs and state. */
export async function stopAndRemove(proc: Subprocess, dir: string): Promise<void> {
  await stopProcess(proc);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Waits until `count` sockets listen on 127.0.0.1:`port` (one per worker for our proxy), read from /proc/net/tcp so
 * that no log line is needed; throws with `describe()` when the process exits or 15 s pass.
 */
export async function waitListening(proc: Subprocess, port: number, count: number, describe: () => string): Promise<void> {
  const listeners = async () => {
    let found = 0;
    await scanListeners("/proc/net/tcp", (address) => {
      if (isLoopbackListener(address, port)) found++;
      return false;
    });
    return found;
  };
  for (let waited = 0; (await listeners()) < count; waited += 10) {
    if (proc.exitCode !== null || waited > 15_000) throw new Error(describe());
    await Bun.sleep(10);
  }
}

export function readJsonLines(file: string): Record<string, unknown>[] {
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

/** Epoch milliseconds of an RFC 3339 time, keeping the fraction's sub-millisecond digits (Date.parse drops them). */
export function epochMs(ts: string): number {
  const match = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (match === null) return Date.parse(ts);
  return Date.parse(`${match[1]}${match[3]}`) + Number(`0.${match[2] ?? "0"}`) * 1000;
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

/** The machine's CPU time so far, from /proc/stat (clock ticks): idle (with iowait), stolen by the hypervisor, and in all. */
export function cpuTimes(): { idle: number; steal: number; total: number } {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1, 9).map(Number);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), steal: fields[7] ?? 0, total: fields.reduce((a, b) => a + b, 0) };
}

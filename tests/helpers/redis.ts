// A real redis-server for tests: a free port, a temporary directory, no persistence; killed, paused and restarted.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { within } from "./deadline.ts";
import { freePort } from "./proxy-process.ts";

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, no credentials. */
  readonly url: string;
  /** SIGKILL; resolves once it has exited. */
  kill(): Promise<void>;
  /** SIGSTOP: the socket stays open and every command hangs, as with a frozen server. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Starts it again on the same port (after kill) with an empty data set; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

const BINARY = "redis-server";
const READY = "Ready to accept connections";
const START_MS = 10_000;
const DIE_WITH_RUNNER = Bun.which("setpriv") === null ? [] : [Bun.which("setpriv") as string, "--pdeathsig", "SIGKILL", "--"];
const running = new Set<ReturnType<typeof Bun.spawn>>();
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
});

let noticed = false;

/** Why a real redis-server cannot run here (said once per test run, however many files ask), or null when it can. */
export function redisUnavailable(): string | null {
  if (Bun.which(BINARY) !== null) return null;
  const why = "redis-server not installed (apt-get install redis-server)";
  if (!noticed) console.warn(`SKIPPED real Redis tests: ${why}`);
  noticed = true;
  return why;
}

/** Resolves true once the server says it is ready, false if it exits first (the port was taken). */
async function ready(proc: ReturnType<typeof Bun.spawn>, output: string[]): Promise<boolean> {
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return false;
    output.push(decoder.decode(value, { stream: true }));
    if (output.join("").includes(READY)) break;
  }
  // Keep reading, so the server never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read()).done);
  })().catch(() => undefined);
  return true;
}

async function spawnOn(port: number, dir: string): Promise<ReturnType<typeof Bun.spawn> | null> {
  const argv = [BINARY, "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no"];
  const proc = Bun.spawn([...DIE_WITH_RUNNER, ...argv], { stdout: "pipe", stderr: "pipe" });
  running.add(proc);
  const output: string[] = [];
  if (await within(START_MS, ready(proc, output), `redis-server on port ${port} ready`)) return proc;
  running.delete(proc);
  if (!output.join("").includes("Address already in use")) throw new Error(`redis-server failed: ${output.join("")}`);
  return null;
}

/** On `port` when given (a test that points a client at it first), else on a free one. */
export async function startRedis(wanted?: number): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "ttp-redis-"));
  let port = wanted ?? freePort();
  let proc = await spawnOn(port, dir);
  // The free port can be taken between the probe and the bind: try a few others.
  for (let tries = 0; proc === null && wanted === undefined && tries < 5; tries++) {
    port = freePort();
    proc = await spawnOn(port, dir);
  }
  if (proc === null) throw new Error("redis-server found no free port");
  let current = proc;
  const kill = async () => {
    current.kill("SIGKILL");
    await current.exited;
    running.delete(current);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    pause: () => void current.kill("SIGSTOP"),
    resume: () => void current.kill("SIGCONT"),
    async restart() {
      const again = await spawnOn(port, dir);
      if (again === null) throw new Error(`redis-server could not listen on port ${port} again`);
      current = again;
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Starts tunnel processes with Bun.spawn, each the leader of its own process group and tied to the proxy's life, with
// their output read line by line; tells whether the cloudflared executable can be run at all.
import { statSync } from "node:fs";
import { ProxyError } from "../errors.ts";
import type { ChildExit, ChildHandle, Spawner } from "./types.ts";

/**
 * After the process has exited, how long its last lines may take to arrive before the exit is reported. They usually
 * say why it exited (`address already in use` decides a retry), but a pipe held open by a process outside the group
 * may never reach EOF, so this waits for the pipes only this long.
 */
const LAST_LINES_GRACE_MS = 200;

/** Reads a stream to its end, calling `onLine` per line; never stalls the child (a full pipe would block it). */
async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of stream) {
    const text = partial + decoder.decode(chunk, { stream: true });
    const lines = text.split(/\r?\n/);
    partial = lines.pop() ?? "";
    for (const line of lines) if (line !== "") onLine(line);
  }
  if (partial !== "") onLine(partial);
}

/** Signals every process of the group `pgid`; a group that is already gone is not an error. */
function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    return;
  }
}

export interface BunSpawnerOptions {
  /** setpriv from util-linux, when present: the child gets SIGKILL when the proxy dies, even by kill -9. */
  readonly setpriv: string | null;
}

/**
 * The child runs in a new session (`detached` calls setsid; setpriv execs, so the pid stays the group leader), and
 * signals go to the whole group: a helper cloudflared starts (a browser launcher) or a wrapper script's children
 * stop with it. Once the leader has exited, whatever is left of its group is killed, so nothing it started outlives
 * it. The exit is taken from the process itself, never from its pipes closing: a descendant may hold them forever.
 */
export function bunSpawner(options: BunSpawnerOptions): Spawner {
  return {
    spawn(argv, onLine): ChildHandle {
      const [program, ...args] = argv;
      const resolved = program === undefined ? null : Bun.which(program);
      if (resolved === null) throw new ProxyError("spawn_failed", `cannot start tunnel: ${program} not found (check --cloudflared-path)`);
      const command = options.setpriv === null ? [resolved, ...args] : [options.setpriv, "--pdeathsig", "SIGKILL", "--", resolved, ...args];
      let proc: ReturnType<typeof Bun.spawn<"ignore", "pipe", "pipe">>;
      try {
        proc = Bun.spawn(command, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: process.env, detached: true });
      } catch (error) {
        throw new ProxyError("spawn_failed", `cannot start tunnel ${resolved}: ${(error as Error).message}`, { cause: error });
      }
      const pgid = proc.pid;
      let leaderExited = false;
      const drained = Promise.all([readLines(proc.stdout, onLine), readLines(proc.stderr, onLine)]).catch(() => undefined);
      const exited: Promise<ChildExit> = proc.exited.then(async (code) => {
        leaderExited = true;
        signalGroup(pgid, "SIGKILL");
        let grace: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([drained, new Promise((resolve) => (grace = setTimeout(resolve, LAST_LINES_GRACE_MS)))]);
        clearTimeout(grace);
        return { code: proc.signalCode === null ? code : null, signal: proc.signalCode === null ? null : String(proc.signalCode) };
      });
      return {
        pid: proc.pid,
        exited,
        kill: (signal) => {
          if (!leaderExited) signalGroup(pgid, signal);
        },
      };
    },
  };
}

/**
 * A one-line warning when `path` (the --cloudflared-path value) cannot be run, or null when it can: without it every
 * tunnel start fails, and nothing would say so before the first client.
 */
export function cloudflaredProblem(path: string): string | null {
  if (Bun.which(path) !== null) return null;
  const fix = "every tunnel start will fail; set --cloudflared-path or CLOUDFLARED_PATH to the cloudflared executable";
  if (!path.includes("/")) return `cloudflared executable "${path}" not found on PATH: ${fix}`;
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    return `cloudflared executable "${path}" does not exist: ${fix}`;
  }
  return `cloudflared executable "${path}" is ${isFile ? "not executable" : "not a file"}: ${fix}`;
}

// Starts tunnel processes with Bun.spawn, tied to the proxy's life, with their output read line by line.
import { ProxyError } from "../errors.ts";
import type { ChildExit, ChildHandle, Spawner } from "./types.ts";

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

export interface BunSpawnerOptions {
  /** setpriv from util-linux, when present: the child gets SIGKILL when the proxy dies, even by kill -9. */
  readonly setpriv: string | null;
}

export function bunSpawner(options: BunSpawnerOptions): Spawner {
  return {
    spawn(argv, onLine): ChildHandle {
      const [program, ...args] = argv;
      const resolved = program === undefined ? null : Bun.which(program);
      if (resolved === null) throw new ProxyError("spawn_failed", `cannot start tunnel: ${program} not found (check --cloudflared-path)`);
      const command = options.setpriv === null ? [resolved, ...args] : [options.setpriv, "--pdeathsig", "SIGKILL", "--", resolved, ...args];
      let proc: ReturnType<typeof Bun.spawn<"ignore", "pipe", "pipe">>;
      try {
        proc = Bun.spawn(command, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: process.env });
      } catch (error) {
        throw new ProxyError("spawn_failed", `cannot start tunnel ${resolved}: ${(error as Error).message}`, { cause: error });
      }
      const drained = Promise.all([readLines(proc.stdout, onLine), readLines(proc.stderr, onLine)]).catch(() => undefined);
      const exited: Promise<ChildExit> = proc.exited.then(async (code) => {
        await drained;
        return { code: proc.signalCode === null ? code : null, signal: proc.signalCode === null ? null : String(proc.signalCode) };
      });
      return {
        pid: proc.pid,
        exited,
        kill: (signal) => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        },
      };
    },
  };
}

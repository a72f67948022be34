// Runs the proxy as a real child process (source or, with TTP_BINARY, the compiled binary) and reads its JSON logs.
import { resolve } from "node:path";
import { within } from "./deadline.ts";
import { forEachLine } from "./lines.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const FAKE_CLOUDFLARED = resolve(ROOT, "tests/fake-cloudflared.ts");

export type LogLine = Record<string, unknown> & { msg: string; level: string };

export interface ProxyProcess {
  readonly port: number;
  readonly adminPort: number | null;
  readonly proc: ReturnType<typeof Bun.spawn>;
  readonly lines: LogLine[];
  /** Resolves with the first log line (already seen or future) matching `predicate`; rejects after the deadline. */
  waitFor(predicate: (line: LogLine) => boolean, deadlineMs?: number): Promise<LogLine>;
  stop(signal?: "SIGTERM" | "SIGINT" | "SIGKILL"): Promise<number>;
}

/** Calls `onLine` with each line of a proxy's stderr, parsed as JSON (a line that is not becomes level "raw"). */
export function readLogLines(stream: ReadableStream<Uint8Array>, onLine: (line: LogLine) => void): Promise<void> {
  return forEachLine(stream, (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: text, level: "raw" };
    }
    onLine(line);
  });
}

/** How long a test waits for a log line or an exit before it fails saying which (not the runner's 60 s timeout). */
const WAIT_MS = 15_000;

export function proxyCommand(): string[] {
  const binary = process.env.TTP_BINARY;
  return binary ? [binary] : [process.execPath, "run", resolve(ROOT, "src/main.ts")];
}

// Below Linux's ephemeral range (32768+), so outgoing connections never hold a tunnel port.
const RANGES_START = 21000;
const RANGES_END = 32000;
/**
 * Every proxy a test started is killed when the test process exits, and — through setpriv's parent-death signal —
 * even when the runner itself is killed, so a failed or interrupted run never leaves one running.
 */
const DIE_WITH_RUNNER = Bun.which("setpriv") === null ? [] : [Bun.which("setpriv") as string, "--pdeathsig", "SIGKILL", "--"];
const started = new Set<ReturnType<typeof Bun.spawn>>();
process.on("exit", () => {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
});

let nextRange = RANGES_START + Math.floor(Math.random() * 100) * 100;

/** A port nothing listens on right now: the kernel's pick for a throwaway listener. */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** A fresh block of tunnel ports, so tests in one run never share one. */
export function portRange(size = 50): string {
  const start = nextRange;
  nextRange = nextRange + 100 > RANGES_END ? RANGES_START : nextRange + 100;
  return `${start}-${start + size - 1}`;
}

/** How to run it: `prefix` goes before the proxy's command (it must exec it), `cloudflared` replaces the fake. */
export interface LaunchOptions {
  readonly prefix?: readonly string[];
  readonly cloudflared?: string;
}

export async function startProxy(args: string[] = [], env: Record<string, string> = {}, launch: LaunchOptions = {}): Promise<ProxyProcess> {
  const hasRange = args.some((arg) => arg.startsWith("--port-range"));
  const argv = [
    ...DIE_WITH_RUNNER,
    ...(launch.prefix ?? []),
    ...proxyCommand(),
    "--listen", "127.0.0.1:0",
    "--log-format", "json",
    "--log-level", "debug",
    "--cloudflared-path", launch.cloudflared ?? FAKE_CLOUDFLARED,
    ...(hasRange ? [] : ["--port-range", portRange()]),
    ...args,
  ];
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe", env: { ...process.env, ...env } });
  started.add(proc);
  void proc.exited.then(() => started.delete(proc));
  const lines: LogLine[] = [];
  const waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void; reject: (error: Error) => void }[] = [];
  const pump = (async () => {
    await readLogLines(proc.stderr, (line) => {
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    });
    const log = lines.map((l) => JSON.stringify(l)).join("\n");
    for (const waiter of waiters.splice(0)) waiter.reject(new Error(`proxy exited before the awaited log line; log:\n${log}`));
  })();
  const waitFor = (predicate: (line: LogLine) => boolean, deadlineMs = WAIT_MS) => {
    const seen = lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    const line = new Promise<LogLine>((resolveLine, reject) => waiters.push({ predicate, resolve: resolveLine, reject }));
    return within(deadlineMs, line, `a log line matching ${predicate.toString()}`);
  };
  // With --log-format plain a line is raw text: its fields are read off it.
  const field = (line: LogLine, name: string) => Number(line[name] ?? new RegExp(` ${name}=(\\d+)`).exec(line.msg)?.[1]);
  const named = (msg: string) => (line: LogLine) => line.msg === msg || (line.level === "raw" && line.msg.includes(`  ${msg} `));
  const listening = await waitFor(named("listening"));
  const admin = args.includes("--metrics-listen") ? await waitFor(named("admin listening")) : null;
  return {
    port: field(listening, "port"),
    adminPort: admin === null ? null : field(admin, "port"),
    proc,
    lines,
    waitFor,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null) proc.kill(signal);
      const code = await within(WAIT_MS, proc.exited, `the proxy's exit on ${signal}`);
      await pump;
      return code;
    },
  };
}

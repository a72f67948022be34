// Runs one cloudflared — the real one or the fake — bare, in a chain's namespace, and records what it says (each line
// with when it arrived) and how it ends; optionally under strace, for the order of its writes (Bun sends to the
// socket pair Bun.spawn gives it rather than write) and its listen().
import { existsSync, readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { FAKE_CLOUDFLARED, freePort } from "../helpers/proxy-process.ts";
import { within } from "../helpers/deadline.ts";
import { eventually } from "../helpers/admin.ts";
import { REAL_CLOUDFLARED, type RealChain } from "./harness.ts";
import { forEachLine } from "../helpers/lines.ts";

export type Which = "real" | "fake";

export interface TimedLine {
  readonly stream: "out" | "err";
  readonly text: string;
  readonly at: number;
}

export interface Ended {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface CloudflaredRun {
  readonly lines: TimedLine[];
  readonly startedAt: number;
  /** The first line (seen or to come) matching `predicate`. */
  line(predicate: (text: string) => boolean, deadlineMs?: number): Promise<TimedLine>;
  /** Sends `signal` to cloudflared itself (under strace, to the traced child). */
  signal(signal: "SIGTERM" | "SIGKILL"): void;
  ended(deadlineMs?: number): Promise<Ended>;
}

const STRACE = Bun.which("strace");
export const straceMissing = STRACE === null ? "strace not installed" : null;
/** A cloudflared that outlives its runner (a failed test) dies with it. */
const DIE_WITH_RUNNER = Bun.which("setpriv") === null ? [] : ["setpriv", "--pdeathsig", "SIGKILL", "--"];

export function runCloudflared(which: Which, args: string[], chain: RealChain, options: { env?: Record<string, string>; straceTo?: string } = {}): CloudflaredRun {
  const binary = which === "real" ? [REAL_CLOUDFLARED as string] : [process.execPath, FAKE_CLOUDFLARED];
  const traced = options.straceTo === undefined ? [] : [STRACE as string, "-f", "-ttt", "-s", "256", "-e", "trace=write,writev,pwritev2,sendto,sendmsg,listen", "-o", options.straceTo];
  const argv = [...DIE_WITH_RUNNER, ...chain.wrap([...traced, ...DIE_WITH_RUNNER, ...binary, ...args])];
  const startedAt = performance.now();
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...chain.env, ...options.env } });
  const lines: TimedLine[] = [];
  const waiters: { predicate: (text: string) => boolean; resolve: (line: TimedLine) => void }[] = [];
  const read = (stream: ReadableStream<Uint8Array>, name: "out" | "err") =>
    forEachLine(stream, (text) => {
      const line = { stream: name, text, at: performance.now() };
      lines.push(line);
      for (const waiter of waiters.filter((w) => w.predicate(text))) (waiters.splice(waiters.indexOf(waiter), 1), waiter.resolve(line));
    });
  const drained = Promise.all([read(proc.stdout, "out"), read(proc.stderr, "err")]);
  const target = () => {
    if (options.straceTo === undefined) return proc.pid;
    const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, "utf8").trim().split(/\s+/);
    return Number(children[0]);
  };
  return {
    lines,
    startedAt,
    line(predicate, deadlineMs = 15_000) {
      const seen = lines.find((l) => predicate(l.text));
      if (seen) return Promise.resolve(seen);
      const line = new Promise<TimedLine>((resolve) => waiters.push({ predicate, resolve }));
      return within(deadlineMs, line, `${which} cloudflared: a line matching ${predicate.toString()}; got ${JSON.stringify(lines.map((l) => l.text))}`);
    },
    signal: (signal) => process.kill(target(), signal),
    async ended(deadlineMs = 15_000) {
      try {
        await within(deadlineMs, proc.exited, `${which} cloudflared's exit`);
      } catch (error) {
        proc.kill("SIGKILL");
        throw error;
      }
      await drained;
      return { code: proc.signalCode === null ? proc.exitCode : null, signal: proc.signalCode === null ? null : String(proc.signalCode) };
    },
  };
}

/** From an strace -f -ttt log: when the startup line was written and when listen() was called (epoch seconds). */
export function straceOrder(path: string): { writeAt: number; listenAt: number } {
  const log = readFileSync(path, "utf8").split("\n");
  const time = (line: string | undefined) => Number(line?.split(/\s+/)[1]);
  const write = log.find((l) => /(write\w*|sendto|sendmsg)\(\d+, .*Start Websocket listener/.test(l));
  const listen = log.find((l) => /listen\(\d+, \d+/.test(l));
  if (write === undefined || listen === undefined) throw new Error(`strace saw no startup write or no listen():\n${log.join("\n")}`);
  return { writeAt: time(write), listenAt: time(listen) };
}

/** Local addresses (hex, as /proc/net/tcp{,6} lists them) listening on `port`. */
export function listenersOn(port: number): string[] {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const found: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"].filter((t) => existsSync(t))) {
    for (const line of readFileSync(table, "latin1").split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === "0A" && local?.endsWith(suffix)) found.push(local.slice(0, -suffix.length));
    }
  }
  return found;
}

/**
 * Connects and sends a few bytes; `written` resolves once the kernel has them (on loopback: in the peer's receive
 * queue) or the connection is gone, `ended` with how the connection ended, even a reset before the connect was
 * reported. The real cloudflared resets only a connection with unread bytes.
 */
export function fate(port: number): { socket: Socket; written: Promise<void>; ended: Promise<"reset" | "closed"> } {
  const socket = netConnect({ host: "127.0.0.1", port });
  const ended = new Promise<"reset" | "closed">((resolve) => {
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNRESET" ? "reset" : "closed"));
    socket.once("close", () => resolve("closed"));
  });
  const written = new Promise<void>((resolve) => {
    socket.write("these bytes are never read", () => resolve());
    socket.once("close", () => resolve());
  });
  return { socket, written, ended };
}

/** A tunnel for `hostname` on a fresh port, once that port listens. */
export async function listening(which: Which, hostname: string, chain: RealChain, env: Record<string, string> = {}): Promise<{ run: CloudflaredRun; port: number }> {
  const port = freePort();
  const run = runCloudflared(which, ["access", "tcp", "--hostname", hostname, "--url", `127.0.0.1:${port}`], chain, { env });
  await eventually(() => listenersOn(port).length, (n) => n > 0 || run.lines.some((l) => l.text.includes("ERR")));
  return { run, port };
}

// The bench's peers are Go programs (scripts/bench/go: load generator, backend, cloudflared and edge stand-ins), so
// that they cost far less per connection and per byte than the proxies they load. Built on first use with the `go`
// on PATH into node_modules/.cache, rebuilt whenever a source changes; this file runs them and reads their results.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const SOURCES = resolve(import.meta.dir, "go");
const CACHE = resolve(import.meta.dir, "../../node_modules/.cache/ttpbench");

let built: string | null = null;

/** The peers binary, built if its sources changed since the last build. */
export function peersBinary(): string {
  if (built !== null) return built;
  const hash = createHash("sha256");
  for (const name of readdirSync(SOURCES).filter((n) => n.endsWith(".go") || n === "go.mod").sort()) {
    hash.update(name).update("\0").update(readFileSync(join(SOURCES, name))).update("\0");
  }
  const dir = join(CACHE, hash.digest("hex").slice(0, 16));
  const binary = join(dir, "ttpbench");
  if (!existsSync(binary)) {
    const go = Bun.which("go");
    if (go === null) {
      throw new Error(
        "the bench's load generator, backend and tunnel stand-ins are Go programs (scripts/bench/go) and no `go` is on " +
          "PATH: install Go 1.19 or newer (Debian: apt-get install golang-go), standard library only, nothing is downloaded",
      );
    }
    mkdirSync(dir, { recursive: true });
    const partial = `${binary}.${process.pid}`;
    const build = Bun.spawnSync([go, "build", "-trimpath", "-o", partial, "."], {
      cwd: SOURCES,
      env: { ...process.env, CGO_ENABLED: "0", GOPROXY: "off", GOTOOLCHAIN: "local" },
      stderr: "pipe",
    });
    if (build.exitCode !== 0) throw new Error(`building scripts/bench/go failed:\n${build.stderr.toString()}`);
    renameSync(partial, binary);
    // Builds of older sources are of no more use.
    for (const old of readdirSync(CACHE)) if (join(CACHE, old) !== dir) rmSync(join(CACHE, old), { recursive: true, force: true });
  }
  return (built = binary);
}

export const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Every result carries the CPU time (user + system, ms) the peer process spent on it. */
export interface PeerResult {
  readonly cpuMs: number;
}

/** Runs `ttpbench COMMAND ARGS` to its end and returns its JSON result line; throws with its stderr on failure. */
export async function runPeer<T extends PeerResult>(command: string, args: readonly (string | number)[]): Promise<T> {
  const proc = Bun.spawn([peersBinary(), command, ...args.map(String)], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`ttpbench ${command} failed (${code}): ${err.trim()}`);
  return JSON.parse(out.trim().split("\n").at(-1) ?? "") as T;
}

/** A process's CPU time so far (user + system, all threads, ms), from /proc/<pid>/stat; 0 once it is gone. */
export function cpuMsOf(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0;
  }
  // Fields after the command name, which may hold spaces: state is field 3, utime 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** USER_HZ: 100 on every Linux this bench runs on. */
const CLOCK_TICKS = 100;

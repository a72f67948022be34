// What the tests of deploy/ share: the operators' tools they run (a missing one skips with one notice, and fails
// under CI=true), running a command, what the binary's --help lists, and the env file example parsed.
import { test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ROOT, proxyCommand } from "../helpers/proxy-process.ts";

export const DEPLOY = resolve(ROOT, "deploy");
const ENV_EXAMPLE = resolve(DEPLOY, "tcp-tunnel-proxy.env");

/** Registers, under CI=true only, a test that fails saying why the tests it stands for could not run. */
function requiredInCi(what: string, why: string): void {
  console.warn(`SKIPPED ${what}: ${why}`);
  test.if(process.env.CI === "true")(`CI can run ${what}`, () => {
    throw new Error(`${what} cannot run in CI: ${why}`);
  });
}

/** The path of the tool `name`, or null after one notice (Debian package `pkg` has it). */
export function tool(name: string, pkg: string): string | null {
  const path = Bun.which(name, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` });
  if (path === null) requiredInCi(`the ${name} tests`, `${name} not found (apt-get install ${pkg})`);
  return path;
}

/** True when the binary lists every name of `needs` in --help; else false after one notice naming what it lacks. */
export function binaryHas(what: string, needs: readonly string[]): boolean {
  const help = binaryHelp();
  const missing = needs.filter((name) => !help.variables.has(name) && !help.flags.has(name));
  if (missing.length > 0) requiredInCi(what, `the binary under test is older than deploy/ and lacks ${missing.join(", ")}`);
  return missing.length === 0;
}

export interface Help {
  readonly flags: Set<string>;
  readonly variables: Set<string>;
  /** Each variable's default as --help shows it. */
  readonly defaults: Map<string, string>;
}

let help: Help | undefined;

export function binaryHelp(): Help {
  if (help !== undefined) return help;
  const result = Bun.spawnSync([...proxyCommand(), "--help"], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`--help exited ${result.exitCode}: ${result.stderr.toString()}`);
  const text = result.stdout.toString();
  const flags = new Set([...text.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1] as string));
  const defaults = new Map<string, string>();
  for (const [, names, shown] of text.matchAll(/^ +env ([A-Z_/]+)(?: \([^)]*\))?; default (.*)$/gm)) {
    // PORT_RANGE_START/PORT_RANGE_END share one line and one default, 20000-20100.
    const split = (names as string).split("/");
    const values = split.length === 2 ? (shown as string).split("-") : [shown as string];
    split.forEach((name, i) => defaults.set(name, values[i] ?? (shown as string)));
  }
  help = { flags, variables: new Set(defaults.keys()), defaults };
  return help;
}

export interface EnvExample {
  /** Variables set, in file order. */
  readonly active: Map<string, string>;
  /** Variables shown commented out (`# NAME=`): documented, left unset. */
  readonly unset: Set<string>;
}

const ASSIGNMENT = /^([A-Z][A-Z0-9_]*)=(.*)$/;
const COMMENTED = /^# ([A-Z][A-Z0-9_]*)=(.*)$/;

/**
 * Reads an env file the way systemd, `docker --env-file` and `set -a; . FILE` all read it alike: NAME=value lines with
 * no quotes, `$` or backslashes; each variable (set or commented out) right below a comment line of its own.
 */
export function parseEnvExample(text = readFileSync(ENV_EXAMPLE, "utf8")): EnvExample {
  const active = new Map<string, string>();
  const unset = new Set<string>();
  let explained = false;
  text.split("\n").forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    const match = ASSIGNMENT.exec(line) ?? COMMENTED.exec(line);
    if (match === null) {
      if (line !== "" && !line.startsWith("#")) throw new Error(`${where}: neither a comment nor NAME=value`);
      explained = line.startsWith("# ");
      return;
    }
    const [, name, value] = match as unknown as [string, string, string];
    if (!explained) throw new Error(`${where}: ${name} has no comment line of its own above it`);
    if (/["'$\\`]/.test(value)) throw new Error(`${where}: quotes, $ and backslashes read differently in systemd and sh`);
    if (active.has(name) || unset.has(name)) throw new Error(`${where}: ${name} twice`);
    if (line.startsWith("#")) unset.add(name);
    else active.set(name, value);
    explained = false;
  });
  return { active, unset };
}

/** Runs `argv` to its end: its exit code and everything it printed. */
export async function run(argv: string[], options: { cwd?: string } = {}): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(argv, { cwd: options.cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out + err };
}

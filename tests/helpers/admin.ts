// Reads the proxy's admin endpoints and /proc facts about its process, for leak and metric assertions.
import { readdirSync, readFileSync } from "node:fs";
import type { TunnelInfo } from "../../src/supervisor/tunnel.ts";

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|\+Inf|NaN))$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"/g;

/** Parses Prometheus text exposition strictly: every line is HELP, TYPE or a sample of a declared family. */
export function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE") {
        if (!["counter", "gauge", "histogram"].includes(meta[3] as string)) throw new Error(`bad type: ${line}`);
        if (types.has(meta[2] as string)) throw new Error(`TYPE twice: ${line}`);
        types.set(meta[2] as string, meta[3] as string);
      } else helped.add(meta[2] as string);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample: ${JSON.stringify(line)}`);
    const name = match[1] as string;
    const family = name.replace(/_(bucket|sum|count)$/, "");
    if (!types.has(name) && !(types.get(family) === "histogram")) throw new Error(`sample without TYPE: ${line}`);
    if (!helped.has(types.has(name) ? name : family)) throw new Error(`sample without HELP: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(LABEL)) labels[key as string] = value as string;
    samples.push({ name, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/** GET on the admin server without keep-alive, so a pooled connection never counts as one of the proxy's sockets. */
export function adminGet(adminPort: number, path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${adminPort}${path}`, { headers: { connection: "close" }, keepalive: false });
}

export async function scrape(adminPort: number): Promise<Sample[]> {
  const response = await adminGet(adminPort, "/metrics");
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return parseExposition(await response.text()).samples;
}

export function metric(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found === undefined) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return found.value;
}

export async function tunnels(adminPort: number): Promise<TunnelInfo[]> {
  return (await (await adminGet(adminPort, "/tunnels")).json()) as TunnelInfo[];
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

/** Is `pid` a live process (a zombie waiting for its parent counts as gone)? */
export function isAlive(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** PIDs of live processes whose command line contains `needle`. */
export function processesMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (cmdline.includes(needle) && !/\) Z /.test(stat)) pids.push(Number(entry));
    } catch {
      continue;
    }
  }
  return pids;
}

/** Polls a condition that only changes through other processes' events, without a fixed sleep. */
export async function eventually<T>(read: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (performance.now() > deadline) throw new Error(`condition not reached in ${timeoutMs}ms; last value ${JSON.stringify(value)}`);
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}

// How the CPU time of the machine went while a phase ran on one route: the route's, the peers' (the load generator's,
// which it reports itself, and the backend's), everything else's, and what stayed idle, each as a share of one core.
import { cpus } from "node:os";
import { cpuMsOf } from "./peers.ts";
import { cpuTimes } from "./processes.ts";
import type { Metric } from "./report.ts";
import type { Backend } from "./routes.ts";

export type Meter = ReturnType<typeof meter>;

/**
 * CPU time of the route and the backend, and the machine's, between begin() and end(), as shares of one core over
 * that span (the load generator reports its own CPU time, which is added to the backend's for the peers). What the
 * machine spent beyond the route and the peers is other people's work or the kernel's own (interrupts): a large share
 * of it means the figure was taken on a busy machine.
 */
export function meter(pid: number | null, backend: Backend) {
  const read = () => ({ at: performance.now(), route: pid === null ? 0 : cpuMsOf(pid), backend: backend.cpuMs(), machine: cpuTimes() });
  let first = read();
  let last = first;
  const share = (ms: number) => (100 * ms) / (last.at - first.at);
  const machine = (ticks: number) => (100 * CORES * ticks) / Math.max(1, last.machine.total - first.machine.total);
  return {
    begin: () => void (first = read()),
    end: () => void (last = read()),
    routeMs: () => last.route - first.route,
    routeShare: () => share(last.route - first.route),
    peerShare: (loadMs: number) => share(loadMs + last.backend - first.backend),
    idle: () => machine(last.machine.idle - first.machine.idle),
    busy: () => machine(last.machine.total - first.machine.total - (last.machine.idle - first.machine.idle)),
  };
}

const CORES = cpus().length;

/** How the machine's CPU went during one measurement, in shares of one core. */
export interface Shares {
  readonly route: number | null;
  readonly peers: number;
  readonly other: number;
  readonly idle: number;
}

export function sharesOf(m: Meter, hasRoute: boolean, loadMs: number): Shares {
  const route = hasRoute ? m.routeShare() : 0;
  const peers = m.peerShare(loadMs);
  return { route: hasRoute ? route : null, peers, other: m.busy() - route - peers, idle: m.idle() };
}

/** Records the route's, the peers', everything else's and the idle share of the machine while a phase ran. */
export function recordShares(record: (metric: Metric, route: string, value: number) => void, prefix: "cps" | "loaded", name: string, shares: Shares): void {
  if (shares.route !== null) record(`${prefix}RouteShare`, name, shares.route);
  record(`${prefix}Peers`, name, shares.peers);
  record(`${prefix}Other`, name, shares.other);
  record(`${prefix}Idle`, name, shares.idle);
}

/** Beyond this share of one core spent on neither the route nor the peers, a measurement was taken on a busy machine. */
const BUSY_OTHER = 30;
/** Measurements taken at most for one figure on a busy machine. */
const ATTEMPTS = 3;
/** The machine counts as quiet below this share of one core busy, sampled over QUIET_SAMPLE_MS. */
const QUIET_BUSY = 30;
const QUIET_SAMPLE_MS = 1000;
const QUIET_GIVE_UP_MS = 120_000;

/** Waits (up to QUIET_GIVE_UP_MS) until the machine is quiet: other people's work here comes and goes. */
async function waitForQuiet(): Promise<void> {
  for (const began = performance.now(); performance.now() - began < QUIET_GIVE_UP_MS;) {
    const before = cpuTimes();
    await Bun.sleep(QUIET_SAMPLE_MS);
    const after = cpuTimes();
    const busy = (100 * CORES * (after.total - before.total - (after.idle - before.idle))) / Math.max(1, after.total - before.total);
    if (busy < QUIET_BUSY) return;
  }
}

/**
 * Takes a measurement on a quiet machine: waits for one, measures, and when other work still took more than
 * BUSY_OTHER of a core meanwhile, tries again (ATTEMPTS in all), keeping the attempt with the least of it.
 */
export async function quietly<T extends { shares: Shares }>(what: string, measure: () => Promise<T>, log: (text: string) => void): Promise<T> {
  let best: T | null = null;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    await waitForQuiet();
    const result = await measure();
    if (best === null || result.shares.other < best.shares.other) best = result;
    if (result.shares.other <= BUSY_OTHER) break;
    log(`${what}: other work took ${result.shares.other.toFixed(0)}% of a core meanwhile${attempt < ATTEMPTS ? "; measuring again" : "; keeping the quietest attempt"}`);
  }
  return best as T;
}

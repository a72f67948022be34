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

/** Records the route's, the peers', everything else's and the idle share of the machine while a phase ran. */
export function recordShares(
  record: (metric: Metric, route: string, value: number) => void,
  prefix: "cps" | "loaded",
  t: { readonly name: string; readonly pid: number | null },
  m: Meter,
  loadMs: number,
  log: (text: string) => void,
): void {
  const route = t.pid === null ? 0 : m.routeShare();
  const peers = m.peerShare(loadMs);
  const other = m.busy() - route - peers;
  if (t.pid !== null) record(`${prefix}RouteShare`, t.name, route);
  record(`${prefix}Peers`, t.name, peers);
  record(`${prefix}Other`, t.name, other);
  record(`${prefix}Idle`, t.name, m.idle());
  if (other > BUSY_OTHER) log(`${t.name}: ${other.toFixed(0)}% of a core went to other work during ${prefix}: a busy machine`);
}

/** Beyond this share of one core spent on neither the route nor the peers, a phase's figure is suspect. */
const BUSY_OTHER = 30;

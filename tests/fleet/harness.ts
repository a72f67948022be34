// Fleet members for tests: a logger that keeps its lines, a route that records (or holds) what it is given.
import type { Clock } from "../../src/clock.ts";
import { Fleet, type FleetOptions, type RouteResult } from "../../src/fleet/fleet.ts";
import type { CancelNotice, RelayedCancel } from "../../src/fleet/message.ts";
import type { MemberTunnel } from "../../src/fleet/record.ts";
import type { Fields, Level, Logger } from "../../src/ops/log.ts";
import { eventually } from "../helpers/admin.ts";
import { unique } from "../helpers/builders.ts";
import { cancelRequest } from "../helpers/wire.ts";

export interface LogEntry {
  readonly level: Level;
  readonly msg: string;
  readonly fields: Fields;
}

export interface TestMember {
  readonly fleet: Fleet;
  readonly nodeId: string;
  readonly lines: LogEntry[];
  /** Every cancel given to route, in order. */
  readonly routed: RelayedCancel[];
  /** Resolves once route has been given `count` cancels in all. */
  routedAtLeast(count: number): Promise<void>;
  /** Settles every route call being held (see `hold`) with `result`. */
  release(result: RouteResult): void;
}

export interface MemberSetup extends Partial<FleetOptions> {
  /** What route answers; "hold" keeps each call pending until release(). */
  readonly answer?: RouteResult | "hold" | "throw";
  readonly tunnels?: readonly MemberTunnel[];
  readonly clock?: Clock;
}

export function fleetName(): string {
  return `ttp-test-${unique()}`;
}

export function recordingLogger(lines: LogEntry[]): Logger {
  const emit = (level: Level) => (msg: string, fields: Fields = {}) => void lines.push({ level, msg, fields });
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error"), enabled: () => true, flush: () => undefined };
}

/** A member of fleet `name`, started. */
export function member(url: string, name: string, setup: MemberSetup = {}): TestMember {
  const nodeId = setup.nodeId ?? `node-${unique()}`;
  const lines: LogEntry[] = [];
  const routed: RelayedCancel[] = [];
  const held: ((result: RouteResult) => void)[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const route = (cancel: RelayedCancel): Promise<RouteResult> => {
    routed.push(cancel);
    for (const waiter of waiters.filter((w) => routed.length >= w.count)) waiter.resolve();
    const answer = setup.answer ?? "forwarded";
    if (answer === "throw") throw new Error("route failed");
    if (answer !== "hold") return Promise.resolve(answer);
    return new Promise((resolve) => held.push(resolve));
  };
  const options: FleetOptions = { url, name, nodeId, version: "9.9.9", listen: "127.0.0.1:5432", startedAt: Date.UTC(2026, 0, 2, 3, 4, 5), ...setup };
  const fleet = new Fleet(options, { log: recordingLogger(lines), clock: setup.clock, tunnels: () => setup.tunnels ?? [], route });
  fleet.start();
  return {
    fleet,
    nodeId,
    lines,
    routed,
    routedAtLeast: (count) =>
      routed.length >= count ? Promise.resolve() : new Promise((resolve) => void waiters.push({ count, resolve })),
    release(result) {
      for (const settle of held.splice(0)) settle(result);
    },
  };
}

/** A CancelRequest for process `pid` with secret `key`, as the edge would hand it over. */
export function notice(pid: number, key: number, client = "203.0.113.7"): CancelNotice {
  return { client, clientPort: 51234, local: { address: "10.0.0.1", port: 5432 }, request: cancelRequest(pid, key), header: null };
}

/** The process id written in a relayed CancelRequest (bytes 8–11). */
export function pidOf(cancel: RelayedCancel): number {
  return new DataView(cancel.request.buffer, cancel.request.byteOffset).getUint32(8);
}

/** Resolves once every member is connected and subscribed. */
export async function allUp(members: readonly TestMember[], timeoutMs = 5000): Promise<void> {
  await eventually(() => members.every((m) => m.fleet.up), Boolean, timeoutMs);
}

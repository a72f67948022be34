// The tunnel state machine (docs/ARCHITECTURE.md): the table of legal transitions and the one function that applies them.
import type { Logger } from "../ops/log.ts";
import type { Tunnel } from "./tunnel.ts";
import type { TunnelState } from "./types.ts";

/**
 * Every move a tunnel may make. `starting` covers a first start, a restart waiting out its backoff and a pinned retry;
 * `stopped` is final (the record leaves the table); `failed` ends in a pinned retry or in being forgotten.
 */
export const LEGAL_TRANSITIONS: Readonly<Record<TunnelState, readonly TunnelState[]>> = {
  // listening (with or without connections), failed, stopped with or without a process to wait for
  starting: ["ready", "idle", "failed", "stopping", "stopped"],
  // last connection gone, crashed (restart), login prompt or too many crashes, stopped, crashed for good
  ready: ["idle", "starting", "failed", "stopping", "stopped"],
  idle: ["ready", "starting", "failed", "stopping", "stopped"],
  stopping: ["stopped"],
  // a pinned tunnel's retry after its cooldown; forgotten after it
  failed: ["starting", "stopped"],
  stopped: [],
};

/** Ready and idle tunnels have a process that listens: they can be leased. */
export function isLeasable(state: TunnelState): state is "ready" | "idle" {
  return state === "ready" || state === "idle";
}

/** Moves `tunnel` to `to` if the table allows it; an illegal move is a bug, logged and not applied. */
export function transition(tunnel: Tunnel, to: TunnelState, log: Logger): boolean {
  const from = tunnel.state;
  if (!LEGAL_TRANSITIONS[from].includes(to)) {
    log.error("bug: illegal tunnel transition", { from, to, tunnel: tunnel.hostname });
    return false;
  }
  tunnel.state = to;
  tunnel.version++;
  return true;
}

// A fleet member's record in the store: what it is and which tunnels it runs, as JSON, written and read back here.
import { isNodeId } from "../config/fleet-url.ts";

export interface MemberTunnel {
  readonly hostname: string;
  readonly state: string;
  readonly pinned: boolean;
  readonly connections: number;
}

/** Field names as `GET /fleet` serves them, like the tunnel objects of `/tunnels`. */
export interface MemberRecord {
  readonly node_id: string;
  readonly listen: string;
  readonly version: string;
  /** ISO 8601. */
  readonly started_at: string;
  readonly tunnels: readonly MemberTunnel[];
}

export function buildRecord(
  identity: { readonly nodeId: string; readonly listen: string; readonly version: string; readonly startedAt: number },
  tunnels: readonly MemberTunnel[],
): MemberRecord {
  return {
    node_id: identity.nodeId,
    listen: identity.listen,
    version: identity.version,
    started_at: new Date(identity.startedAt).toISOString(),
    tunnels: tunnels.map(({ hostname, state, pinned, connections }) => ({ hostname, state, pinned, connections })),
  };
}

function isString(value: unknown, maxLength = 1024): value is string {
  return typeof value === "string" && value.length <= maxLength;
}

function isTunnel(value: unknown): value is MemberTunnel {
  if (typeof value !== "object" || value === null) return false;
  const tunnel = value as Record<string, unknown>;
  return (
    isString(tunnel.hostname, 253) &&
    isString(tunnel.state, 64) &&
    typeof tunnel.pinned === "boolean" &&
    Number.isSafeInteger(tunnel.connections) &&
    (tunnel.connections as number) >= 0
  );
}

/**
 * The record stored under a member's key, or null when it is not one (another program's value under our prefix, a
 * record from an incompatible version): such a value is left out of the member list rather than failing it.
 */
export function parseRecord(text: string): MemberRecord | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const record = parsed as Record<string, unknown>;
  const { node_id, listen, version, started_at, tunnels } = record;
  if (!isString(node_id) || !isNodeId(node_id) || !isString(listen) || !isString(version) || !isString(started_at)) return null;
  if (Number.isNaN(Date.parse(started_at)) || !Array.isArray(tunnels) || !tunnels.every(isTunnel)) return null;
  return buildRecord({ nodeId: node_id, listen, version, startedAt: Date.parse(started_at) }, tunnels);
}

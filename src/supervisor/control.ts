// Tunnel control by hand (the admin API's POST and DELETE /tunnels/{hostname}, and --warm): start and join, pin and
// unpin, stop (unforced or forced), on the same table, starts and stops the connections use.
import { isLeasable } from "./state.ts";
import type { Stops } from "./stops.ts";
import type { TunnelTable } from "./table.ts";
import type { Tunnel } from "./tunnel.ts";
import type { TunnelProcess } from "./process.ts";
import type { StartResult, TunnelControl, TunnelInfo } from "./types.ts";
import type { Logger } from "../ops/log.ts";

export interface ControlDeps {
  readonly table: TunnelTable;
  readonly stops: Stops;
  readonly log: Logger;
  /** The tunnel to wait for or start, as a connection would have it; throws when it must be refused now. */
  readonly usable: (hostname: string, pinning: boolean) => Tunnel;
  /** Waits for a start to end (rejecting as it fails) or a stop to complete. */
  readonly settled: (tunnel: Tunnel) => Promise<void>;
  readonly stuck: (pids: readonly number[]) => void;
}

function isEnding(tunnel: Tunnel): boolean {
  return tunnel.state === "stopping" || tunnel.state === "stopped";
}

export class Control implements TunnelControl {
  constructor(private readonly deps: ControlDeps) {}

  info(hostname: string): TunnelInfo | null {
    return this.deps.table.get(hostname)?.info() ?? null;
  }

  async start(hostname: string, options: { readonly pin?: boolean } = {}): Promise<StartResult> {
    const { table, usable, settled } = this.deps;
    for (;;) {
      const known = table.get(hostname);
      // A failed tunnel pinned now is retried when its cooldown ends: that is the answer, not the cooldown.
      if (options.pin === true && known?.state === "failed" && !table.closing) {
        this.pin(known);
        return { kind: "pinned_in_cooldown", info: known.info() };
      }
      const tunnel = usable(hostname, options.pin === true);
      if (options.pin === true) this.pin(tunnel);
      if (options.pin === false) this.unpin(tunnel);
      if (isLeasable(tunnel.state)) return { kind: "ready", info: tunnel.info() };
      await settled(tunnel);
    }
  }

  async stop(hostname: string, options: { readonly force?: boolean } = {}): Promise<"stopped" | "unknown" | "in_use"> {
    const { table, stops } = this.deps;
    let tunnel = table.get(hostname);
    if (tunnel === undefined) return "unknown";
    let process: TunnelProcess | null = null;
    while (tunnel !== undefined && !isEnding(tunnel)) {
      this.unpin(tunnel);
      if (tunnel.state !== "failed" && tunnel.connections > 0) {
        if (options.force !== true) return "in_use";
        for (const holder of [...tunnel.holders]) holder.onTunnelLost("stopped by admin");
      }
      process = tunnel.process;
      if (tunnel.state !== "idle" || options.force === true) {
        stops.now(tunnel, "admin");
        break;
      }
      // A decided stop is abandoned when anything happens meanwhile (a lease, a crash): look at the tunnel again.
      if (await stops.decide(tunnel, "admin")) break;
      tunnel = table.get(hostname);
    }
    if (process !== null && !(await process.gone())) this.deps.stuck([process.pid]);
    return "stopped";
  }

  /** --warm: pins and starts each; a failure is logged by the start and retried by the pinned policy. */
  warm(hostnames: readonly string[]): void {
    for (const hostname of hostnames) void this.start(hostname, { pin: true }).catch(() => undefined);
  }

  private pin(tunnel: Tunnel): void {
    if (tunnel.pinned || tunnel.state === "stopping" || tunnel.state === "stopped") return;
    tunnel.pinned = true;
    tunnel.idleTimer?.cancel();
    tunnel.idleTimer = null;
    this.deps.log.info("tunnel pinned", { tunnel: tunnel.hostname });
  }

  /** Unpinned, an idle tunnel is stopped after --idle-timeout like any other. */
  private unpin(tunnel: Tunnel): void {
    if (!tunnel.pinned) return;
    tunnel.pinned = false;
    this.deps.log.info("tunnel unpinned", { tunnel: tunnel.hostname });
    this.deps.stops.armIdle(tunnel);
  }
}

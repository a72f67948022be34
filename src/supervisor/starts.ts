// Starts and what ends them: readiness, failed starts and their cooldown, crashes and their restarts with backoff,
// the login prompt, and a pinned tunnel's retries.
import type { Clock } from "../clock.ts";
import { ProxyError, isProxyError } from "../errors.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics, TunnelFailure } from "../ops/metrics.ts";
import { LOGIN_REQUIRED, type Launcher } from "./launcher.ts";
import type { OutputSignal } from "./output.ts";
import type { TunnelProcess } from "./process.ts";
import { isLeasable } from "./state.ts";
import type { Stops } from "./stops.ts";
import type { TunnelTable } from "./table.ts";
import type { Tunnel } from "./tunnel.ts";
import type { EdgeNotices } from "./types.ts";

export interface StartOptions {
  readonly restartBackoffMs: number;
  readonly maxRestarts: number;
}

const HEALTHY_RUN_MS = 60_000;
/** The log line of each way into the failed state (logged at error). */
const FAILURE_MESSAGES: Record<TunnelFailure, string> = {
  login_required: "tunnel needs login",
  crash_loop: "tunnel failed",
  start_failed: "tunnel start failed",
};
/** A tunnel that lost its last connection this recently when it died was still in use (their closes may come first). */
const RECENT_USE_MS = 1000;
/** A pinned tunnel's retries after failed starts wait twice as long each time, up to this. */
export const PINNED_RETRY_MAX_MS = 30_000;

/**
 * Refusals: no process was spawned and they say nothing about the hostname, so no cooldown for them, unless the tunnel
 * is pinned and must retry.
 */
const REFUSALS = ["tunnel_capacity", "pool_exhausted", "tunnel_stopping", "tunnel_start_rate"] as const;

export class Starts {
  constructor(
    private readonly table: TunnelTable,
    private readonly stops: Stops,
    private readonly launcher: Launcher,
    private readonly options: StartOptions,
    private readonly deps: { readonly clock: Clock; readonly log: Logger; readonly metrics: Metrics; readonly edges: EdgeNotices },
  ) {}

  /** Runs the start of `tunnel`, which is `starting`; its waiters wait on `tunnel.started`. */
  async begin(tunnel: Tunnel): Promise<void> {
    if (tunnel.state !== "starting") return;
    let process: TunnelProcess;
    try {
      process = await this.launcher.start(tunnel, () => tunnel.state === "starting" && !this.table.closing);
    } catch (error) {
      if (tunnel.state === "starting") this.startFailed(tunnel, error as Error);
      return;
    }
    // A stop that landed while the port came up has already asked this process to go: it stays stopped.
    if (tunnel.state !== "starting" || tunnel.process !== process) return process.stop();
    this.ready(tunnel, process);
  }

  private ready(tunnel: Tunnel, process: TunnelProcess): void {
    const { clock, metrics, log } = this.deps;
    const now = clock.now();
    tunnel.readyAt = now;
    tunnel.pinnedFailures = 0;
    this.table.change(tunnel, tunnel.connections > 0 ? "ready" : "idle");
    const startupMs = now - (tunnel.startedAt ?? now);
    metrics.tunnelStarts.inc("ok");
    metrics.tunnelStartup.observe(startupMs / 1000);
    log.info("tunnel ready", { tunnel: tunnel.hostname, port: process.port, pid: process.pid, startup_ms: Math.round(startupMs) });
    this.stops.armIdle(tunnel);
  }

  private startFailed(tunnel: Tunnel, error: Error): void {
    if (REFUSALS.some((code) => isProxyError(error, code))) {
      this.deps.log.warn("tunnel refused", { tunnel: tunnel.hostname, reason: error.message, pinned: tunnel.pinned });
      if (tunnel.pinned) return this.fail(tunnel, error.message, null, error);
      this.table.change(tunnel, "stopped", { why: error });
      return;
    }
    this.deps.metrics.tunnelStarts.inc("failed");
    const login = isProxyError(error, "tunnel_login_required");
    this.fail(tunnel, error.message, login ? "login_required" : "start_failed", error);
  }

  /**
   * Failed: its process is stopped, its connections closed, and it refuses new ones until its cooldown ends; then it
   * is forgotten, or, pinned, started again (the wait doubling with every failure in a row, up to 30 s). `kind` null:
   * a pinned tunnel refused a start (capacity, pool), which is no failure of the tunnel.
   */
  fail(tunnel: Tunnel, reason: string, kind: TunnelFailure | null, why?: Error): void {
    const { clock, log } = this.deps;
    if (kind !== null) this.deps.metrics.tunnelFailures.inc(kind);
    tunnel.cancelTimers();
    tunnel.lastError = reason;
    const backoffMs = this.options.restartBackoffMs;
    const cooldownMs = tunnel.pinned ? Math.min(backoffMs * 2 ** tunnel.pinnedFailures++, Math.max(PINNED_RETRY_MAX_MS, backoffMs)) : backoffMs;
    tunnel.cooldownUntil = clock.now() + cooldownMs;
    this.table.change(tunnel, "failed", { why: why ?? new ProxyError("tunnel_start_failed", reason) });
    if (kind === null) log.warn("pinned tunnel refused; retrying after its cooldown", { tunnel: tunnel.hostname, reason, cooldown_ms: cooldownMs });
    else log.error(FAILURE_MESSAGES[kind], { tunnel: tunnel.hostname, reason, cooldown_ms: cooldownMs });
    tunnel.process?.stop();
    for (const holder of [...tunnel.holders]) holder.onTunnelLost(reason);
    tunnel.cooldownTimer = clock.after(cooldownMs, () => this.cooldownEnded(tunnel));
  }

  /** Also called early, by a connection that arrives when the cooldown is over but its timer has not fired yet. */
  cooldownEnded(tunnel: Tunnel): void {
    if (tunnel.state !== "failed") return;
    tunnel.cooldownTimer?.cancel();
    tunnel.cooldownTimer = null;
    if (!tunnel.pinned || this.table.closing) {
      this.table.change(tunnel, "stopped");
      return;
    }
    this.deps.log.info("tunnel restarting", { tunnel: tunnel.hostname, pinned: true, after_failures: tunnel.pinnedFailures });
    // Like a new tunnel after its cooldown, which starts afresh, crashes are counted from zero again.
    tunnel.attempt = 0;
    this.table.change(tunnel, "starting");
    void this.begin(tunnel);
  }

  /**
   * Output after the start: a login prompt fails the tunnel. (An origin failure is counted by the connection it
   * failed, which sees the tunnel close before the backend answers.)
   */
  onOutput(tunnel: Tunnel, process: TunnelProcess, signal: OutputSignal): void {
    if (signal.kind === "login_prompt" && tunnel.process === process && isLeasable(tunnel.state)) {
      this.fail(tunnel, LOGIN_REQUIRED, "login_required", new ProxyError("tunnel_login_required", LOGIN_REQUIRED));
    }
  }

  onExit(tunnel: Tunnel, process: TunnelProcess): void {
    if (tunnel.process !== process) return;
    tunnel.process = null;
    if (process.stopRequested) {
      if (tunnel.state === "stopping") this.table.change(tunnel, "stopped");
      return;
    }
    // A start in progress sees this exit through its readiness wait; a failed tunnel's process was asked to stop.
    if (isLeasable(tunnel.state)) this.crashed(tunnel, process);
  }

  /** An exit nobody asked for: restarted when in use or pinned, up to --max-restarts times in a row. */
  private crashed(tunnel: Tunnel, process: TunnelProcess): void {
    const { clock, log, metrics } = this.deps;
    const now = clock.now();
    if (tunnel.readyAt !== null && now - tunnel.readyAt >= HEALTHY_RUN_MS) tunnel.attempt = 0;
    const inUse = tunnel.connections > 0 || now - tunnel.lastReleaseAt < RECENT_USE_MS;
    log.warn("tunnel exited unexpectedly", { tunnel: tunnel.hostname, pid: process.pid, exit: process.exit, in_use: inUse, pinned: tunnel.pinned });
    this.deps.edges.exited(tunnel.hostname, `tunnel process exited unexpectedly (${process.exit})`);
    if (this.table.closing || !(inUse || tunnel.pinned)) {
      this.table.change(tunnel, "stopped");
      return;
    }
    const { maxRestarts, restartBackoffMs } = this.options;
    if (tunnel.attempt >= maxRestarts) {
      this.fail(tunnel, `crashed ${tunnel.attempt + 1} times in a row (--max-restarts ${maxRestarts})`, "crash_loop");
      return;
    }
    tunnel.attempt++;
    tunnel.restarts++;
    metrics.tunnelRestarts.inc();
    const delayMs = restartBackoffMs * tunnel.attempt;
    this.table.change(tunnel, "starting");
    log.info("tunnel restarting", { tunnel: tunnel.hostname, attempt: tunnel.attempt, delay_ms: delayMs });
    tunnel.restartTimer = clock.after(delayMs, () => {
      tunnel.restartTimer = null;
      void this.begin(tunnel);
    });
  }
}

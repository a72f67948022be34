// Starting and stopping one tunnel's cloudflared: a port from the pool, the spawn, readiness, one retry on a taken
// port, output read line by line, SIGTERM then SIGKILL. What a crash or a login prompt means is the supervisor's call.
import { ProxyError } from "../errors.ts";
import type { Logger } from "../ops/log.ts";
import { classifyLine, type OutputSignal } from "./output.ts";
import type { PortPool } from "./port-pool.ts";
import { StartWaiter } from "./readiness.ts";
import type { Tunnel } from "./tunnel.ts";
import type { Clock } from "../clock.ts";
import type { ChildHandle, PortProbe, Spawner } from "./types.ts";

export interface LauncherOptions {
  readonly cloudflaredPath: string;
  readonly cloudflaredArgs: readonly string[];
  readonly startupTimeoutMs: number;
}

export interface LauncherDeps {
  readonly clock: Clock;
  readonly spawner: Spawner;
  readonly probe: PortProbe;
  readonly pool: PortPool;
  readonly log: Logger;
}

export interface LaunchEvents {
  /** A line that is not about the start in progress (a login prompt after readiness, an origin failure, …). */
  onOutput(tunnel: Tunnel, signal: OutputSignal): void;
  /** The process of a started tunnel exited; `how` is "status N" or "signal S". Its port is back in the pool. */
  onExit(tunnel: Tunnel, pid: number, how: string): void;
}

const KILL_AFTER_MS = 2000;
export const LOGIN_REQUIRED =
  "cloudflared asks for an interactive Access login: give it a service token (TUNNEL_SERVICE_TOKEN_ID/_SECRET)";

export class Launcher {
  constructor(
    private readonly options: LauncherOptions,
    private readonly deps: LauncherDeps,
    private readonly events: LaunchEvents,
  ) {}

  /** Resolves once the tunnel's port listens; throws a ProxyError saying why it will not. */
  async spawnUntilReady(tunnel: Tunnel, closing: () => boolean): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (closing()) throw new ProxyError("tunnel_stopping", "the proxy is shutting down");
      const port = this.deps.pool.reserve((candidate) => this.deps.probe.isHeld(candidate));
      const outcome = await this.launch(tunnel, port);
      if (outcome.kind === "ready") return;
      if (outcome.retryOtherPort && attempt === 0) {
        this.deps.log.warn("tunnel port taken, retrying on another", { tunnel: tunnel.hostname, port });
        await tunnel.exited;
        continue;
      }
      throw new ProxyError(outcome.login ? "tunnel_login_required" : "tunnel_start_failed", outcome.reason);
    }
  }

  /** SIGTERM now, SIGKILL after 2 s if it is still there. */
  stopChild(tunnel: Tunnel): void {
    const child = tunnel.child;
    if (child === null || tunnel.stopRequested) return;
    tunnel.stopRequested = true;
    child.kill("SIGTERM");
    tunnel.killTimer = this.deps.clock.after(KILL_AFTER_MS, () => child.kill("SIGKILL"));
  }

  private async launch(tunnel: Tunnel, port: number) {
    const { clock, spawner, probe, log, pool } = this.deps;
    const argv = [this.options.cloudflaredPath, "access", "tcp", "--hostname", tunnel.hostname, "--url", `127.0.0.1:${port}`,
      ...this.options.cloudflaredArgs];
    tunnel.port = port;
    tunnel.startedAt = clock.now();
    let child: ChildHandle;
    try {
      child = spawner.spawn(argv, (line) => this.onLine(tunnel, line));
    } catch (error) {
      pool.release(port);
      tunnel.port = null;
      throw error;
    }
    const waiter = new StartWaiter(clock, probe, port, this.options.startupTimeoutMs);
    tunnel.waiter = waiter;
    tunnel.child = child;
    tunnel.exited = child.exited.then((exit) => this.childExited(tunnel, child, exit.signal === null ? `status ${exit.code}` : `signal ${exit.signal}`));
    log.info("tunnel starting", { tunnel: tunnel.hostname, port, pid: child.pid });
    const outcome = await waiter.outcome;
    tunnel.waiter = null;
    if (outcome.kind === "failed" && tunnel.child !== null) this.stopChild(tunnel);
    return outcome;
  }

  private onLine(tunnel: Tunnel, line: string): void {
    const signal = classifyLine(line);
    if (signal.kind === "info" || signal.kind === "binding") this.deps.log.debug("cloudflared", { tunnel: tunnel.hostname, line });
    else this.deps.log.warn("cloudflared", { tunnel: tunnel.hostname, line });
    const waiter = tunnel.waiter?.pending ? tunnel.waiter : null;
    if (waiter === null) return this.events.onOutput(tunnel, signal);
    switch (signal.kind) {
      case "address_in_use":
        return waiter.fail(`port ${tunnel.port} already in use`, { retryOtherPort: true });
      case "start_failure":
        return waiter.fail(`cloudflared: ${signal.reason}`);
      case "login_prompt":
        return waiter.fail(LOGIN_REQUIRED, { login: true });
      case "binding":
        return waiter.hint();
      default:
        return this.events.onOutput(tunnel, signal);
    }
  }

  private childExited(tunnel: Tunnel, child: ChildHandle, how: string): void {
    if (tunnel.child !== child) return;
    tunnel.child = null;
    tunnel.killTimer?.cancel();
    if (tunnel.port !== null) this.deps.pool.release(tunnel.port);
    if (tunnel.waiter?.pending) return tunnel.waiter.fail(`cloudflared exited with ${how} before listening`);
    this.events.onExit(tunnel, child.pid, how);
  }
}

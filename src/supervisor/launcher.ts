// Starting one tunnel's cloudflared: room under the cap, a port from the pool, the spawn, readiness, one retry on a
// taken port, output read line by line. What a crash or a login prompt means is the supervisor's call.
import { ProxyError } from "../errors.ts";
import type { Logger } from "../ops/log.ts";
import type { Capacity } from "./capacity.ts";
import { classifyLine, type OutputSignal } from "./output.ts";
import { redactor } from "../config/secrets.ts";
import type { PortPool } from "./port-pool.ts";
import { TunnelProcess } from "./process.ts";
import { StartWaiter } from "./readiness.ts";
import type { Tunnel } from "./tunnel.ts";
import type { Clock } from "../clock.ts";
import type { ChildHandle, PortProbe, Spawner } from "./types.ts";

export interface LauncherOptions {
  readonly cloudflaredPath: string;
  readonly cloudflaredArgs: readonly string[];
  readonly startupTimeoutMs: number;
  /** Secret values cloudflared is given: hidden in the lines of its output the log carries. */
  readonly secrets?: readonly string[];
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
  onOutput(tunnel: Tunnel, process: TunnelProcess, signal: OutputSignal): void;
  /** `process` has exited and given back its port and slot; a start in progress has already seen it. */
  onExit(tunnel: Tunnel, process: TunnelProcess): void;
}

export const LOGIN_REQUIRED =
  "cloudflared asks for an interactive Access login: give it a service token (TUNNEL_SERVICE_TOKEN_ID/_SECRET)";

export class Launcher {
  private readonly redact: (line: string) => string;

  constructor(
    private readonly options: LauncherOptions,
    private readonly deps: LauncherDeps,
    private readonly capacity: Capacity,
    private readonly events: LaunchEvents,
  ) {
    this.redact = redactor(options.secrets ?? []);
  }

  /**
   * Resolves with the tunnel's process once its port listens; throws a ProxyError saying why it will not. `wanted`
   * turns false when the start is abandoned (a stop, the shutdown); it is checked after every wait.
   */
  async start(tunnel: Tunnel, wanted: () => boolean): Promise<TunnelProcess> {
    for (let attempt = 0; ; attempt++) {
      const process = await this.spawnWithRoom(tunnel, wanted);
      const outcome = await (process.waiter as StartWaiter).outcome;
      process.waiter = null;
      if (outcome.kind === "ready" && process.running) return process;
      process.stop();
      if (outcome.kind === "ready") throw new ProxyError("tunnel_start_failed", `cloudflared exited with ${process.exit} as it began listening`);
      if (outcome.retryOtherPort && attempt === 0) {
        this.deps.log.warn("tunnel port taken, retrying on another", { tunnel: tunnel.hostname, port: process.port });
        continue;
      }
      throw new ProxyError(outcome.login ? "tunnel_login_required" : "tunnel_start_failed", outcome.reason);
    }
  }

  private async spawnWithRoom(tunnel: Tunnel, wanted: () => boolean): Promise<TunnelProcess> {
    for (;;) {
      if (!wanted()) throw new ProxyError("tunnel_stopping", `the start of ${tunnel.hostname} was abandoned`);
      if (this.capacity.hasRoom()) return this.spawn(tunnel);
      await this.capacity.freeOne(tunnel.hostname);
    }
  }

  /** Synchronous from the room check to the slot being taken: the port and the slot go to the process it returns. */
  private spawn(tunnel: Tunnel): TunnelProcess {
    const { clock, spawner, probe, log, pool } = this.deps;
    const port = pool.reserve((candidate) => probe.isHeld(candidate));
    const argv = [this.options.cloudflaredPath, "access", "tcp", "--hostname", tunnel.hostname, "--url", `127.0.0.1:${port}`,
      ...this.options.cloudflaredArgs];
    // Lines only arrive after spawn() returns, once the process below exists to route them.
    let owner: TunnelProcess | null = null;
    let child: ChildHandle;
    try {
      child = spawner.spawn(argv, (line) => owner !== null && this.onLine(tunnel, owner, line));
    } catch (error) {
      pool.release(port);
      throw error;
    }
    const process = new TunnelProcess(tunnel.hostname, port, child, clock, (exited) => {
      pool.release(exited.port);
      this.capacity.giveBack(exited);
    });
    owner = process;
    this.capacity.take(process);
    process.waiter = new StartWaiter(clock, probe, port, this.options.startupTimeoutMs);
    tunnel.process = process;
    tunnel.startedAt = clock.now();
    log.info("tunnel starting", { tunnel: tunnel.hostname, port, pid: process.pid });
    void process.exited.then(() => this.exited(tunnel, process));
    return process;
  }

  private onLine(tunnel: Tunnel, process: TunnelProcess, line: string): void {
    const signal = classifyLine(line);
    const logged = { tunnel: tunnel.hostname, line: this.redact(line) };
    if (signal.kind === "info" || signal.kind === "binding") this.deps.log.debug("cloudflared", logged);
    else this.deps.log.warn("cloudflared", logged);
    const waiter = process.waiter?.pending ? process.waiter : null;
    if (waiter === null) return this.events.onOutput(tunnel, process, signal);
    switch (signal.kind) {
      case "address_in_use":
        return waiter.fail(`port ${process.port} already in use`, { retryOtherPort: true });
      case "start_failure":
        return waiter.fail(`cloudflared: ${signal.reason}`);
      case "login_prompt":
        return waiter.fail(LOGIN_REQUIRED, { login: true });
      case "binding":
        return waiter.hint();
      default:
        return this.events.onOutput(tunnel, process, signal);
    }
  }

  private exited(tunnel: Tunnel, process: TunnelProcess): void {
    if (process.stopRequested) this.deps.log.info("tunnel stopped", { tunnel: tunnel.hostname, pid: process.pid });
    if (process.waiter?.pending) process.waiter.fail(`cloudflared exited with ${process.exit} before listening`);
    this.events.onExit(tunnel, process);
  }
}

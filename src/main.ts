// Entry point: configuration, logger, metrics, port pool, supervisor, edge listener, admin server, signals.
import { loadConfig, type Config } from "./config/load.ts";
import { formatDuration } from "./config/duration.ts";
import { isProxyError } from "./errors.ts";
import { VERSION } from "./version.ts";
import { createLogger, type Logger } from "./ops/log.ts";
import { Metrics } from "./ops/metrics.ts";
import { startAdmin } from "./ops/admin.ts";
import { EdgeListener } from "./edge/listener.ts";
import { AddressCounts, SharedCounter } from "./edge/limits.ts";
import { PortPool } from "./supervisor/port-pool.ts";
import { Supervisor } from "./supervisor/supervisor.ts";
import { bunSpawner } from "./supervisor/spawner.ts";
import { procNetProbe } from "./supervisor/proc-net.ts";
import { realClock } from "./clock.ts";

const EXIT_LISTEN_FAILED = 1;
const EXIT_BAD_CONFIG = 2;

function logEffectiveConfig(log: Logger, config: Config, setpriv: string | null): void {
  log.info("starting", {
    version: VERSION,
    listen: config.listen.text,
    port_range: `${config.portRange.start}-${config.portRange.end}`,
    idle_timeout: formatDuration(config.idleTimeoutMs),
    startup_timeout: formatDuration(config.startupTimeoutMs),
    hello_timeout: formatDuration(config.helloTimeoutMs),
    restart_backoff: formatDuration(config.restartBackoffMs),
    max_restarts: config.maxRestarts,
    cloudflared_path: config.cloudflaredPath,
    cloudflared_args: config.cloudflaredArgs.join(" "),
    hostname_template: config.hostnameTemplate,
    on_no_sni: config.onNoSni,
    allow_sni_suffix: config.allowSniSuffix.join(",") || "any",
    max_tunnels: config.maxTunnels,
    max_connections: config.maxConnections,
    max_conns_per_ip: config.maxConnsPerIp,
    trusted_proxies: config.trustedProxies.any ? "any" : config.trustedProxies.entries.join(",") || "none",
    send_proxy: config.sendProxy,
    metrics_listen: config.metricsListen?.text ?? "off",
    drain_timeout: formatDuration(config.drainTimeoutMs),
    log_format: config.logFormat,
    log_level: config.logLevel,
    pdeathsig: setpriv === null ? "unavailable" : "setpriv",
  });
}

async function main(): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (!isProxyError(error, "config_invalid")) throw error;
    process.stderr.write(`tcp-tunnel-proxy: ${error.message}\n`);
    return EXIT_BAD_CONFIG;
  }
  if (loaded.kind === "help") {
    process.stdout.write(loaded.text);
    return 0;
  }
  if (loaded.kind === "version") {
    process.stdout.write(`tcp-tunnel-proxy ${VERSION}\n`);
    return 0;
  }
  const config = loaded.config;
  const log = createLogger({ format: config.logFormat, level: config.logLevel });
  const setpriv = Bun.which("setpriv");
  logEffectiveConfig(log, config, setpriv);
  if (setpriv === null) log.warn("setpriv not found: tunnel processes are not killed if the proxy itself is killed with SIGKILL");

  const metrics = new Metrics();
  const supervisor = new Supervisor(config, {
    clock: realClock,
    spawner: bunSpawner({ setpriv }),
    probe: procNetProbe(),
    pool: new PortPool(config.portRange.start, config.portRange.end),
    log,
    metrics,
  });
  const total = new SharedCounter();
  const edge = new EdgeListener(config, { tunnels: supervisor, log, metrics, total, perAddress: new AddressCounts(config.maxConnsPerIp), index: 0 });
  metrics.addGauges(() => total.value, () => supervisor.countByState());
  let draining = false;
  let admin: ReturnType<typeof startAdmin> | null = null;
  let binding = config.listen.text;
  try {
    const port = edge.start();
    log.info("listening", { listen: config.listen.text, port });
    if (config.metricsListen !== null) {
      binding = config.metricsListen.text;
      admin = startAdmin(config.metricsListen, { metrics, tunnels: () => supervisor.list(), draining: () => draining });
      log.info("admin listening", { listen: binding, port: admin.port });
    }
  } catch (error) {
    log.error("cannot listen", { listen: binding, reason: (error as Error).message });
    edge.stopAccepting();
    log.flush();
    return EXIT_LISTEN_FAILED;
  }

  return new Promise<number>((resolve) => {
    const shutdown = async (signal: string) => {
      if (draining) {
        log.warn("second signal: closing every connection now", { signal });
        edge.closeAll("second signal");
        return;
      }
      draining = true;
      edge.stopAccepting();
      log.info("draining", { signal, connections: edge.connections.size, drain_timeout: formatDuration(config.drainTimeoutMs) });
      const deadline = setTimeout(() => {
        log.warn("drain timeout: closing the remaining connections", { connections: edge.connections.size });
        edge.closeAll("drain timeout");
      }, config.drainTimeoutMs);
      await edge.whenEmpty();
      clearTimeout(deadline);
      await supervisor.stopAll();
      await admin?.stop(true);
      log.info("stopped");
      log.flush();
      resolve(0);
    };
    process.on("SIGTERM", () => void shutdown("SIGTERM"));
    process.on("SIGINT", () => void shutdown("SIGINT"));
  });
}

process.exit(await main());

// The start of a run as the log shows it: the effective configuration once (secrets hidden), then one warning for
// each choice an operator exposed to the internet should know they made.
import type { Config } from "../config/load.ts";
import { formatDuration } from "../config/duration.ts";
import { redactArgs } from "../config/secrets.ts";
import { redactUrl } from "../config/fleet-url.ts";
import { isLoopbackHost } from "./admin.ts";
import type { Logger } from "./log.ts";
import { VERSION } from "../version.ts";

export interface StartFacts {
  /** setpriv's path, or null when it is missing. */
  readonly setpriv: string | null;
  /** Why cloudflared cannot be run, or null when it can. */
  readonly cloudflared: string | null;
}

export function logStart(log: Logger, config: Config, facts: StartFacts): void {
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
    cloudflared_args: redactArgs(config.cloudflaredArgs).join(" "),
    hostname_template: config.hostnameTemplate,
    on_no_sni: config.onNoSni,
    allow_sni_suffix: config.sniAllowlist === "list" ? config.allowSniSuffix.join(",") : config.sniAllowlist,
    max_tunnels: config.maxTunnels,
    max_connections: config.maxConnections,
    max_conns_per_ip: config.maxConnsPerIp,
    trusted_proxies: config.trustedProxies.any ? "any" : config.trustedProxies.entries.join(",") || "none",
    send_proxy: config.sendProxy,
    metrics_listen: config.metricsListen?.text ?? "off",
    drain_timeout: formatDuration(config.drainTimeoutMs),
    cancel_fanout: config.cancelFanout,
    reuse_port: config.reusePort,
    warm: config.warm.join(",") || "none",
    admin_token: config.adminToken === null ? "none" : "set",
    workers: config.workers,
    cancel_rate: config.cancelRate,
    tunnel_start_rate: config.tunnelStartRate,
    evict_min_idle: formatDuration(config.evictMinIdleMs),
    proxy_replay: config.proxyReplay ? "on" : "off",
    fleet_redis: config.fleetRedis === null ? "off" : redactUrl(config.fleetRedis),
    fleet_name: config.fleetName,
    log_format: config.logFormat,
    log_level: config.logLevel,
    pdeathsig: facts.setpriv === null ? "unavailable" : "setpriv",
  });
  warnings(log, config, facts);
}

function warnings(log: Logger, config: Config, facts: StartFacts): void {
  if (config.sniAllowlist === "any") {
    log.warn("--allow-sni-suffix any: every client chooses the hostname its tunnel connects to", {
      service_token: config.serviceToken ? "sent to those hostnames" : "none",
    });
  } else if (config.sniAllowlist === "unset") {
    log.warn("no --allow-sni-suffix: every client chooses the hostname its tunnel connects to; list your domains (required once a service token is configured)");
  }
  const admin = config.metricsListen;
  if (admin !== null && config.adminToken === null && !isLoopbackHost(admin.host)) {
    log.warn("admin server off loopback without --admin-token-file: its GET endpoints are open to the network, tunnel control is refused", {
      listen: admin.text,
    });
  }
  if (facts.setpriv === null) log.warn("setpriv not found: tunnel processes are not killed if the proxy itself is killed with SIGKILL");
  if (facts.cloudflared !== null) log.warn("cloudflared not usable", { cloudflared_path: config.cloudflaredPath, problem: facts.cloudflared });
}

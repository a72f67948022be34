// Entry point. In the main thread: configuration, logger, supervisor, the edges (this thread's and the workers'),
// the admin server and signals. Loaded in a worker thread, it runs one more edge (DESIGN §5).
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { loadConfig, type Config } from "./config/load.ts";
import { formatDuration } from "./config/duration.ts";
import { logStart } from "./ops/start-log.ts";
import { isProxyError } from "./errors.ts";
import { VERSION } from "./version.ts";
import { after, realClock } from "./clock.ts";
import { createLogger } from "./ops/log.ts";
import { Metrics } from "./ops/metrics.ts";
import { isLoopbackHost, startAdmin } from "./ops/admin.ts";
import { StatusReporter, controlMode, defaultNodeId, outcomeTotals } from "./ops/status.ts";
import { EdgeHub } from "./edge/hub.ts";
import { EdgeListener } from "./edge/listener.ts";
import { CancelRouter, type ReceivedCancel } from "./edge/cancel-router.ts";
import { runningTargets } from "./edge/clients.ts";
import { AddressCounts, SharedCounter } from "./edge/limits.ts";
import { runWorker } from "./edge/worker.ts";
import type { WorkerSetup } from "./edge/messages.ts";
import { PortPool } from "./supervisor/port-pool.ts";
import { Supervisor } from "./supervisor/supervisor.ts";
import { bunSpawner, cloudflaredProblem } from "./supervisor/spawner.ts";
import { procNetProbe } from "./supervisor/proc-net.ts";

const EXIT_LISTEN_FAILED = 1;
const EXIT_BAD_CONFIG = 2;
const EXIT_SHUTDOWN_STUCK = 3;
/** A drain that has not completed this long after its deadline is a bug: exit rather than hang forever. */
const SHUTDOWN_GRACE_MS = 10_000;

/** Without --reuse-port, several edges share the port among themselves only: refuse one another process holds. */
function checkPortFree(config: Config): void {
  if (config.workers === 1 || config.reusePort || config.listen.port === 0) return;
  Bun.listen({ hostname: config.listen.host, port: config.listen.port, exclusive: true, socket: { data() {} } }).stop(true);
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
  logStart(log, config, { setpriv, cloudflared: cloudflaredProblem(config.cloudflaredPath) });

  const metrics = new Metrics();
  const total = new SharedCounter();
  const perAddress = new AddressCounts(config.maxConnsPerIp);
  let hub: EdgeHub | null = null;
  const supervisor = new Supervisor(config, {
    clock: realClock,
    spawner: bunSpawner({ setpriv }),
    probe: procNetProbe(),
    pool: new PortPool(config.portRange.start, config.portRange.end),
    log,
    metrics,
    caches: {
      offer: (hostname, port) => hub?.offer(hostname, port),
      withdraw: (hostname) => hub?.withdraw(hostname) ?? Promise.resolve(),
      exited: (hostname, reason) => {
        edge.tunnelExited(hostname, reason);
        hub?.exited(hostname, reason);
      },
    },
  });
  const cancels = new CancelRouter({
    rate: config.cancelRate,
    now: realClock.now,
    targets: async (client) =>
      hub === null ? runningTargets(edge.clients.recent(client), supervisor, config.cancelFanout) : hub.cancelTargets(client),
    relay: () => false,
  });
  const routeCancel = (cancel: ReceivedCancel) => cancels.route(cancel);
  const edge = new EdgeListener(config, { tunnels: supervisor, log, metrics, total, perAddress, index: 0, routeCancel });
  if (config.workers > 1) {
    hub = new EdgeHub({
      config, tunnels: supervisor, perAddress, total, log, routeCancel, recentHere: (a) => edge.clients.recent(a), entry: new URL(import.meta.url),
    });
  }
  metrics.addGauges(() => total.value, () => supervisor.countByState(), () => supervisor.pinnedCount());
  let draining = false;
  let admin: ReturnType<typeof startAdmin> | null = null;
  let binding = config.listen.text;
  try {
    checkPortFree(config);
    const port = edge.start();
    await hub?.start(port);
    log.info("listening", { listen: config.listen.text, port, workers: config.workers });
    if (config.metricsListen !== null) {
      binding = config.metricsListen.text;
      const loopback = isLoopbackHost(config.metricsListen.host);
      const status = new StatusReporter({
        version: VERSION,
        nodeId: defaultNodeId(port),
        workers: config.workers,
        control: controlMode(config.adminToken, loopback),
        clock: realClock,
        draining: () => draining,
        edgesUp: () => (draining ? 0 : config.workers),
        connections: () => total.value,
        outcomes: async () => outcomeTotals(metrics, await (hub?.snapshots() ?? [])),
        tunnels: () => supervisor.list(),
      });
      status.start();
      admin = startAdmin(config.metricsListen, {
        metrics: { render: async () => metrics.render(await (hub?.snapshots() ?? [])) },
        tunnels: () => supervisor.list(),
        control: supervisor,
        draining: () => draining,
        token: config.adminToken,
        loopback,
        status: () => status.read(),
      }, config.reusePort);
      log.info("admin listening", { listen: binding, port: admin.port });
    }
    supervisor.warm(config.warm);
  } catch (error) {
    log.error("cannot listen", { listen: binding, reason: (error as Error).message });
    edge.stopAccepting();
    await hub?.terminate();
    log.flush();
    return EXIT_LISTEN_FAILED;
  }

  return new Promise<number>((resolve) => {
    const closeAll = (reason: string) => {
      edge.closeAll(reason);
      hub?.closeAll(reason);
    };
    const shutdown = async (signal: string) => {
      if (draining) {
        log.warn("second signal: closing every connection now", { signal });
        return closeAll("second signal");
      }
      draining = true;
      edge.stopAccepting();
      log.info("draining", { signal, connections: total.value, drain_timeout: formatDuration(config.drainTimeoutMs) });
      const deadline = after(config.drainTimeoutMs, () => {
        log.warn("drain timeout: closing the remaining connections", { connections: total.value });
        closeAll("drain timeout");
      });
      const stuck = after(config.drainTimeoutMs + SHUTDOWN_GRACE_MS, () => {
        log.error("bug: shutdown did not complete; exiting anyway", { connections: total.value });
        log.flush();
        resolve(EXIT_SHUTDOWN_STUCK);
      });
      await Promise.all([edge.whenEmpty(), hub?.drain()]);
      deadline.cancel();
      edge.flushHeld();
      await supervisor.stopAll();
      await admin?.stop(true);
      await hub?.terminate();
      stuck.cancel();
      log.info("stopped");
      log.flush();
      resolve(0);
    };
    process.on("SIGTERM", () => void shutdown("SIGTERM"));
    process.on("SIGINT", () => void shutdown("SIGINT"));
  });
}

if (isMainThread) process.exit(await main());
else runWorker(workerData as WorkerSetup, parentPort as NonNullable<typeof parentPort>);

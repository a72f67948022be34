// Entry point. In the main thread: configuration, logger, the proxy (proxy.ts) and signals. Loaded in a worker thread,
// it runs one more edge (edge/worker.ts).
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { loadConfig } from "./config/load.ts";
import { isProxyError } from "./errors.ts";
import { VERSION } from "./version.ts";
import { createLogger } from "./ops/log.ts";
import { logStart } from "./ops/start-log.ts";
import { ListenFailure } from "./ops/listen-problem.ts";
import { runWorker } from "./edge/worker.ts";
import type { WorkerSetup } from "./edge/messages.ts";
import { cloudflaredProblem } from "./supervisor/spawner.ts";
import { Proxy } from "./proxy.ts";

const EXIT_LISTEN_FAILED = 1;
const EXIT_BAD_CONFIG = 2;
/** Test fault injection only: each edge worker's first incarnation throws an uncaught error this long after it listens. */
const CRASH_WORKER_VARIABLE = "TTP_TEST_CRASH_WORKER_MS";

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
  const crash = Number(process.env[CRASH_WORKER_VARIABLE] ?? "");
  const proxy = new Proxy(config, log, { setpriv, entry: new URL(import.meta.url), ...(crash > 0 ? { crashWorkerAfterMs: crash } : {}) });
  // Signals are handled from before the first edge accepts: one that comes while the others start waits for them.
  let started = false;
  let stopping: string | null = null;
  let stopped!: (code: number) => void;
  const exit = new Promise<number>((resolve) => (stopped = resolve));
  const stop = (signal: string) => void proxy.shutdown(signal).then((code) => {
    log.flush();
    stopped(code);
  });
  const onSignal = (signal: string) => (started ? stop(signal) : (stopping ??= signal));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  // Configuration is read once; a change takes the upgrade procedure, so SIGHUP (sent by habit) changes nothing.
  process.on("SIGHUP", () => log.info("SIGHUP ignored: configuration is read at start; apply a change with the upgrade procedure"));
  try {
    await proxy.start();
  } catch (error) {
    if (!(error instanceof ListenFailure)) throw error;
    log.error("cannot listen", { listen: error.listen, reason: error.message });
    await proxy.abort();
    log.flush();
    return EXIT_LISTEN_FAILED;
  }
  started = true;
  if (stopping !== null) stop(stopping);
  return exit;
}

if (isMainThread) process.exit(await main());
else runWorker(workerData as WorkerSetup, parentPort as NonNullable<typeof parentPort>);

// An edge worker thread: its own SO_REUSEPORT listener running the whole connection pipeline, with tunnels,
// per-address limits and cancel routing from the main thread by message. An uncaught error ends the thread after
// telling the main thread why and what it counted; the main thread restarts it.
import type { MessagePort } from "node:worker_threads";
import { EdgeListener } from "./listener.ts";
import { AddressCounts, SharedCounter } from "./limits.ts";
import type { ToMain, ToWorker, WorkerSetup } from "./messages.ts";
import { RemotePerAddress, RemoteTunnels, Replies } from "./remote.ts";
import { ProxyError } from "../errors.ts";
import type { CancelRoute } from "./cancel-router.ts";
import { createLogger } from "../ops/log.ts";
import { Metrics } from "../ops/metrics.ts";

export function runWorker(setup: WorkerSetup, parent: MessagePort): void {
  const { config, index } = setup;
  const post = (message: ToMain) => parent.postMessage(message);
  const log = createLogger({ format: config.logFormat, level: config.logLevel });
  const metrics = new Metrics();
  const tunnels = new RemoteTunnels(post);
  const remoteLimit = config.maxConnsPerIp > 0 ? new RemotePerAddress(post) : null;
  const routes = new Replies<CancelRoute>();
  let nextQuery = 0;
  const edge = new EdgeListener(config, {
    tunnels,
    log,
    metrics,
    total: new SharedCounter(setup.total),
    perAddress: remoteLimit ?? new AddressCounts(0),
    index,
    routeCancel: (cancel) => {
      const q = ++nextQuery;
      post({ t: "cancel", q, cancel });
      return routes.wait(q);
    },
  });
  parent.on("message", (message: ToWorker) => {
    switch (message.t) {
      case "leased":
        return tunnels.onLeased(message.id, message.port);
      case "refused":
        return tunnels.onRefused(message.id, new ProxyError(message.code, message.message));
      case "lost":
        return tunnels.onLost(message.id, message.reason);
      case "offer":
        return tunnels.offer(message.hostname, message.port);
      case "withdraw":
        tunnels.withdraw(message.hostname);
        return post({ t: "withdrawn", seq: message.seq });
      case "exited":
        return edge.tunnelExited(message.hostname, message.reason);
      case "verdict":
        return remoteLimit?.onVerdict(message.id, message.allowed);
      case "cancelRoute":
        return routes.settle(message.q, message.route);
      case "recent?":
        return post({ t: "recent", q: message.q, tunnels: edge.clients.recent(message.address) });
      case "metrics?":
        return post({ t: "metrics", q: message.q, snapshot: metrics.snapshot() });
      case "drain":
        edge.stopAccepting();
        return void edge.whenEmpty().then(() => {
          edge.flushHeld();
          log.flush();
          post({ t: "drained" });
        });
      case "closeAll":
        return edge.closeAll(message.reason);
    }
  });
  const dying = (error: unknown) => {
    post({ t: "dying", error: error instanceof Error ? (error.stack ?? error.message) : String(error), snapshot: metrics.snapshot() });
    log.flush();
    process.exit(1);
  };
  process.on("uncaughtException", dying);
  process.on("unhandledRejection", dying);
  try {
    edge.start(setup.port);
    post({ t: "listening" });
  } catch (error) {
    // Exiting, not idling: the main thread sees the exit and starts this edge again with backoff.
    post({ t: "bindFailed", reason: (error as Error).message });
    log.flush();
    process.exit(1);
  }
  if (setup.crashAfterMs !== undefined) {
    setTimeout(() => {
      throw new Error("fault injected for a test (TTP_TEST_CRASH_WORKER_MS)");
    }, setup.crashAfterMs);
  }
}

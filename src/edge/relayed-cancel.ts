// A cancel another proxy of the fleet received: routed by this proxy's own client registry with the same rules as
// its own cancels (fanout, newest first, never starting a tunnel), forwarded as it forwards them, and logged.
import { forwardCancelRequest, noForwardReached, type Slots } from "./cancel.ts";
import type { ReceivedCancel } from "./cancel-router.ts";
import { outgoingHeader } from "./send-proxy.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../ops/log.ts";

export interface RelayedCancelDeps {
  readonly config: Pick<Config, "sendProxy" | "proxyReplay">;
  /** Ports of the running tunnels this client's open connections use, newest first, at most --cancel-fanout. */
  readonly targets: (client: string) => Promise<number[]>;
  readonly slots: Slots;
  readonly log: Logger;
}

export function relayedCancelRoute(deps: RelayedCancelDeps) {
  return async (cancel: ReceivedCancel & { readonly from: string }): Promise<"forwarded" | "unroutable"> => {
    const ports = await deps.targets(cancel.client);
    if (ports.length === 0) return "unroutable";
    const endpoints = () => ({ client: { address: cancel.client, port: cancel.clientPort }, local: cancel.local });
    const forwarded = await forwardCancelRequest(ports, outgoingHeader(deps.config, cancel.header, endpoints), cancel.request, deps.slots);
    deps.log.info("relayed cancel", {
      from: cancel.from,
      client: cancel.client,
      tunnels: forwarded,
      outcome: forwarded > 0 ? "cancel_forwarded" : "backend_error",
      reason: forwarded > 0 ? undefined : noForwardReached(ports.length),
    });
    return forwarded > 0 ? "forwarded" : "unroutable";
  };
}

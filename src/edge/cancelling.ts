// A plaintext PostgreSQL CancelRequest after the prelude: routed (rate, client affinity, fleet), forwarded, and
// summarised. The client gets no bytes; it is closed once every forward is written, as PostgreSQL itself does.
import type { Connection } from "./connection.ts";
import { forwardCancelRequest, noForwardReached } from "./cancel.ts";
import type { CancelRoute, ReceivedCancel } from "./cancel-router.ts";

/** `header`: the PROXY header each forward starts with (null: none). */
export function cancel(conn: Connection, header: Uint8Array | null, received: ReceivedCancel): void {
  conn.to("cancelling");
  conn.client.pause();
  conn.ctx.routeCancel(received).then(
    (route) => {
      if (route.kind === "limited") return cancelled(conn, route, 0);
      return forwardCancelRequest(route.ports, header, received.request, conn.ctx.forwardSlots).then((forwarded) => cancelled(conn, route, forwarded));
    },
    () => cancelled(conn, { kind: "targets", ports: [], relayed: false }, 0),
  );
}

function cancelled(conn: Connection, route: CancelRoute, forwarded: number): void {
  if (conn.state !== "cancelling") return;
  const { cancels } = conn.ctx.metrics;
  conn.cancelTunnels = forwarded;
  if (route.kind === "limited") {
    cancels.inc("limited");
    return conn.close("cancel_limited", "more CancelRequests from this client than --cancel-rate allows");
  }
  if (forwarded > 0) {
    cancels.inc("forwarded");
    return conn.close("cancel_forwarded", undefined);
  }
  if (route.ports.length > 0) {
    cancels.inc("failed");
    return conn.close("backend_error", noForwardReached(route.ports.length));
  }
  if (route.relayed) {
    cancels.inc("relayed");
    return conn.close("cancel_relayed", "no tunnel here carries a connection from this client; relayed to the fleet");
  }
  cancels.inc("unroutable");
  conn.close("cancel_unroutable", "no running tunnel carries a connection from this client");
}

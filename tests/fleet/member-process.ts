// A fleet member in a process of its own: `bun member-process.ts URL NAME NODE TTL_MS REFRESH_MS [stop-when-up]`.
// Killed by a test, it is a member that dies; with stop-when-up it stops once joined and must then exit by itself.
import { Fleet } from "../../src/fleet/fleet.ts";
import { createLogger } from "../../src/ops/log.ts";

const [url, name, nodeId, ttl, refresh, mode] = process.argv.slice(2) as [string, string, string, string, string, string?];
const fleet = new Fleet(
  { url, name, nodeId, version: "9.9.9", listen: "127.0.0.1:0", startedAt: Date.now(), memberTtlMs: Number(ttl), refreshMs: Number(refresh) },
  {
    log: createLogger({ format: "json", level: "info" }),
    tunnels: () => [{ hostname: "cft-db.example", state: "ready", pinned: false, connections: 1 }],
    route: async () => "unroutable",
  },
);
fleet.start();
if (mode === "stop-when-up") {
  while (!fleet.up) await Bun.sleep(10);
  await fleet.stop();
}

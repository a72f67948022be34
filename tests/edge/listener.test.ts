import { expect, test } from "bun:test";
import { EdgeListener } from "../../src/edge/listener.ts";
import { AddressCounts, SharedCounter } from "../../src/edge/limits.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/ops/log.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import { rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records } from "../helpers/builders.ts";
import { within } from "../helpers/deadline.ts";
import { eventually } from "../helpers/admin.ts";

test("a throw inside a socket handler reaches the error handler: logged as a bug, the connection finished", async () => {
  const loaded = loadConfig(["--listen", "127.0.0.1:0", "--workers", "1"], {});
  if (loaded.kind !== "run") throw new Error("config");
  const logs: string[] = [];
  const total = new SharedCounter();
  const edge = new EdgeListener(loaded.config, {
    tunnels: {
      tryAcquire: () => {
        throw new Error("planted fault");
      },
      acquire: () => Promise.reject(new Error("unused")),
      runningPort: () => null,
    },
    log: createLogger({ format: "json", level: "info", write: (line) => logs.push(line) }),
    metrics: new Metrics(),
    total,
    perAddress: new AddressCounts(0),
    index: 0,
    routeCancel: async () => ({ kind: "targets", ports: [], relayed: false }),
  });
  const port = edge.start();
  try {
    const socket = await rawConnect(port);
    const closed = readUntilClose(socket);
    socket.write(records(clientHello({ names: ["db-1.example.test"] })));
    await within(3000, closed, "the client being closed after the fault");
    await within(3000, eventually(() => edge.connections.size, (n) => n === 0), "the connection finishing");
    expect(total.value).toBe(0);
    expect(logs.some((line) => line.includes("bug: connection handler threw") && line.includes("planted fault"))).toBe(true);
    expect(logs.some((line) => line.includes('"msg":"connection"') && line.includes("internal error: planted fault"))).toBe(true);
  } finally {
    edge.stopAccepting();
  }
});

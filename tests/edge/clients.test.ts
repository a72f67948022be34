// The client registry behind cancel affinity: a client's proxied connections newest first, their distinct tunnels,
// and the fanout cap taking the newest running ones.
import { expect, test } from "bun:test";
import { Clients, runningTargets } from "../../src/edge/clients.ts";
import type { Connection } from "../../src/edge/connection.ts";

function connection(key: string, hostname: string): Connection {
  return { key, hostname, newer: null, older: null, proxiedAt: 0 } as unknown as Connection;
}

const ports: Record<string, number> = { "cft-a.test": 20001, "cft-b.test": 20002, "cft-c.test": 20003, "cft-d.test": 20004 };
const tunnels = { runningPort: (hostname: string) => ports[hostname] ?? null };

test("a client's tunnels come newest first, each once; another client's are not mixed in", () => {
  const clients = new Clients();
  const proxied = (key: string, hostname: string) => {
    const c = connection(key, hostname);
    clients.add(key);
    clients.link(c);
    return c;
  };
  proxied("198.51.100.1", "cft-a.test");
  proxied("198.51.100.1", "cft-b.test");
  proxied("198.51.100.2", "cft-d.test");
  const third = proxied("198.51.100.1", "cft-c.test");
  proxied("198.51.100.1", "cft-a.test");
  expect(clients.recent("198.51.100.1").map((r) => r.hostname)).toEqual(["cft-a.test", "cft-c.test", "cft-b.test"]);
  clients.unlink(third);
  expect(clients.recent("198.51.100.1").map((r) => r.hostname)).toEqual(["cft-a.test", "cft-b.test"]);
  expect(clients.recent("198.51.100.3")).toEqual([]);
});

test("the fanout takes the newest running tunnels first, skips ones not running, and stops at the cap", () => {
  const recent = ["cft-c.test", "cft-x.test", "cft-b.test", "cft-a.test"].map((hostname, i) => ({ hostname, at: 100 - i }));
  expect(runningTargets(recent, tunnels, 2)).toEqual([20003, 20002]);
  expect(runningTargets(recent, tunnels, 1)).toEqual([20003]);
  expect(runningTargets(recent, tunnels, 10)).toEqual([20003, 20002, 20001]);
  expect(runningTargets(recent, tunnels, 0)).toEqual([]);
});

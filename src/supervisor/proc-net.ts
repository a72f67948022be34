// Listening sockets from /proc/net/tcp{,6}: readiness without ever connecting to a tunnel's port.
import type { PortProbe } from "./types.ts";

const LISTEN = "0A";
const LOOPBACK_V4 = "0100007F";

function portHex(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

/** True when the table has a LISTEN entry for 127.0.0.1:`port`. Stops at the first match. */
export function hasLoopbackListener(table: string, port: number): boolean {
  const needle = `${LOOPBACK_V4}:${portHex(port)} 00000000:0000 ${LISTEN}`;
  return table.includes(needle);
}

/** Every local port with a LISTEN entry, on any address. */
export function listeningPorts(table: string, into = new Set<number>()): Set<number> {
  for (const line of table.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[3] !== LISTEN) continue;
    const local = fields[1] ?? "";
    into.add(parseInt(local.slice(local.lastIndexOf(":") + 1), 16));
  }
  return into;
}

async function readTable(path: string): Promise<string | undefined> {
  try {
    return await Bun.file(path).text();
  } catch {
    return undefined;
  }
}

async function connectProbe(port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

/** The probe used in production; falls back to a connect probe where /proc/net/tcp does not exist. */
export function procNetProbe(): PortProbe {
  return {
    async isListening(port) {
      const table = await readTable("/proc/net/tcp");
      return table === undefined ? connectProbe(port) : hasLoopbackListener(table, port);
    },
    async busyPorts() {
      const ports = new Set<number>();
      for (const path of ["/proc/net/tcp", "/proc/net/tcp6"]) {
        const table = await readTable(path);
        if (table !== undefined) listeningPorts(table, ports);
      }
      return ports;
    },
  };
}

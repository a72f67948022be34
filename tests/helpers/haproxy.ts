// A real HAProxy for tests: TCP mode, round robin over the given proxies, each told the client in a PROXY v2 header.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./proxy-process.ts";
import { within } from "./deadline.ts";
import { eventually } from "./admin.ts";

export interface Balancer {
  readonly port: number;
  stop(): Promise<void>;
}

const BINARY = Bun.which("haproxy", { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` });
const SETPRIV = Bun.which("setpriv");

/** Why HAProxy cannot run here, or null when it can. */
export function haproxyUnavailable(): string | null {
  return BINARY === null ? "haproxy not installed (apt-get install haproxy)" : null;
}

/**
 * No health checks: they are connections of their own, and without them round robin alternates strictly over the
 * servers in the order given, which is what a test of where each connection lands wants.
 */
function config(front: number, servers: readonly number[]): string {
  return [
    "defaults",
    "    mode tcp",
    "    timeout connect 5s",
    "    timeout client 1m",
    "    timeout server 1m",
    "frontend clients",
    `    bind 127.0.0.1:${front}`,
    "    default_backend proxies",
    "backend proxies",
    "    balance roundrobin",
    ...servers.map((port, i) => `    server proxy${i} 127.0.0.1:${port} send-proxy-v2`),
    "",
  ].join("\n");
}

/** Whether something listens on 127.0.0.1:`port` (read from /proc, so asking opens no connection to balance). */
function listening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/tcp", "utf8").split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1] === local && fields[3] === "0A";
  });
}

/** HAProxy on a free port in front of `servers` (ports on 127.0.0.1); resolves once it listens. */
export async function startBalancer(servers: readonly number[]): Promise<Balancer> {
  const dir = mkdtempSync(join(tmpdir(), "ttp-fleet-haproxy-"));
  const front = freePort();
  writeFileSync(join(dir, "haproxy.cfg"), config(front, servers));
  const argv = [...(SETPRIV === null ? [] : [SETPRIV, "--pdeathsig", "SIGKILL", "--"]), BINARY as string, "-db", "-f", join(dir, "haproxy.cfg")];
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const output = new Response(proc.stderr).text();
  const exited = proc.exited.then(async (code) => {
    throw new Error(`haproxy exited ${code}: ${await output}`);
  });
  await within(10_000, Promise.race([eventually(() => listening(front), Boolean, 10_000), exited]), `haproxy listening on ${front}`);
  exited.catch(() => undefined);
  return {
    port: front,
    async stop() {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Runs the proxy with Cloudflare's real cloudflared against the edge stand-in: the proxy (and so every tunnel it
// starts) in a private mount namespace whose /etc/hosts maps the tunnel hostnames to this chain's own loopback
// address, where the edge listens on 443; the test CA as SSL_CERT_FILE; HOME in a temporary directory.
import { afterAll, beforeAll } from "bun:test";
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { testCerts } from "../helpers/certs.ts";
import { ROOT, startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { startEdge, type Edge, type EdgeBehaviour } from "./edge.ts";

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The real binary: TTP_REAL_CLOUDFLARED, else the one this setup keeps next to the repository. */
function findCloudflared(): string | null {
  const named = process.env.TTP_REAL_CLOUDFLARED;
  if (named !== undefined && named !== "") return executable(named) ? resolve(named) : null;
  const beside = resolve(ROOT, "../shared/cloudflared/cloudflared");
  return executable(beside) ? beside : null;
}

export const REAL_CLOUDFLARED = findCloudflared();

/** Why the real chain cannot run here, or null when it can. */
function unavailability(): string | null {
  if (REAL_CLOUDFLARED === null) {
    const named = process.env.TTP_REAL_CLOUDFLARED;
    return named ? `TTP_REAL_CLOUDFLARED=${named} is not an executable` : "no real cloudflared (set TTP_REAL_CLOUDFLARED or put it at ../shared/cloudflared/cloudflared)";
  }
  if (userInfo().uid !== 0) return "not root (a private /etc/hosts needs a mount namespace)";
  if (Bun.which("unshare") === null) return "unshare not installed (util-linux)";
  return null;
}

export const realUnavailable = unavailability();

let told = false;
/** For test files: whether to skip the real chain, saying why once per run however many files ask. */
export function realSkipped(): boolean {
  if (realUnavailable !== null && !told) console.warn(`SKIPPED tests with the real cloudflared: ${realUnavailable}`);
  told = true;
  return realUnavailable !== null;
}

export interface RealChain {
  readonly edge: Edge;
  /** This chain's loopback address: the edge listens on it, and the namespace's /etc/hosts maps hostnames to it. */
  readonly address: string;
  /** Maps `host` to the edge in the namespace's /etc/hosts and sets what the edge does for it. */
  serve(host: string, behaviour: EdgeBehaviour): void;
  /** Maps `host` to `address` in the namespace's /etc/hosts (replacing what it mapped to before). */
  map(host: string, address: string): void;
  /** Starts the proxy in the namespace with the real cloudflared (JSON logs, like every end-to-end test). */
  proxy(args?: string[], env?: Record<string, string>): Promise<ProxyProcess>;
  /** The command that runs `argv` in the namespace (for a bare cloudflared, say). */
  wrap(argv: string[]): string[];
  /** Environment a process of the chain gets: the test CA, the private HOME, no display for a browser. */
  readonly env: Record<string, string>;
  close(): void;
}

// Loopback addresses 127.0.0.16-127.0.0.239, from a random start so concurrent runs on one machine rarely meet; a
// taken one (its port 443 held) is skipped.
const FIRST = 16;
const COUNT = 224;
let next = Math.floor(Math.random() * COUNT);

/** Runs `listen` on the next loopback address whose port 443 it can take (it throws when the port is held). */
export function onFreshAddress<T>(listen: (address: string) => T): T {
  for (let tries = 0; tries < COUNT; tries++) {
    const address = `127.0.0.${FIRST + (next++ % COUNT)}`;
    try {
      return listen(address);
    } catch {
      continue;
    }
  }
  throw new Error("no loopback address with a free port 443");
}

/** Chains not closed yet: their directories go when the run ends, even after a failure skipped a test's close(). */
const open = new Set<string>();
process.on("exit", () => {
  for (const dir of open) rmSync(dir, { recursive: true, force: true });
});

export function realChain(): RealChain {
  const cloudflared = REAL_CLOUDFLARED as string;
  const edge = onFreshAddress(startEdge);
  const dir = mkdtempSync(join(tmpdir(), "ttp-real-"));
  open.add(dir);
  const hosts = join(dir, "hosts");
  const home = join(dir, "home");
  // Cloudflare's login service is this edge too, where it fails at once (no certificate for it): a login flow never
  // reaches the real one, whatever route the machine has.
  const names = new Map([["localhost", "127.0.0.1"], ["login.cloudflareaccess.org", edge.address]]);
  // Rewritten in place (same inode, which the bind mount shows), so a process started later sees every change.
  const map = (host: string, address: string) => {
    names.set(host, address);
    writeFileSync(hosts, [...names].map(([name, at]) => `${at} ${name}\n`).join(""));
  };
  map("localhost", "127.0.0.1");
  mkdirSync(home);
  // cloudflared keeps Access tokens and their lock files under ~/.cloudflared: each chain has its own.
  const env = { SSL_CERT_FILE: testCerts().caPath, HOME: home, DISPLAY: "", WAYLAND_DISPLAY: "" };
  // The bind mount is private to the new namespace (unshare makes its mounts private): the host's /etc/hosts is
  // untouched.
  const wrap = (argv: string[]) => ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts, ...argv];
  return {
    edge,
    address: edge.address,
    env,
    wrap,
    serve(host, behaviour) {
      map(host, edge.address);
      edge.route(host, behaviour);
    },
    map,
    proxy: (args = [], extra = {}) =>
      startProxy(args, { ...env, ...extra }, { prefix: wrap([]), cloudflared }),
    close() {
      edge.stop();
      rmSync(dir, { recursive: true, force: true });
      open.delete(dir);
    },
  };
}

/** What `bridgedChain` sets up before a describe block's tests and takes down after them. */
export interface BridgedChain<B> {
  readonly backend: B;
  readonly chain: RealChain;
  readonly proxy: ProxyProcess;
}

/**
 * For one describe block: `start` a backend, bridge each of `tunnels` to it through the edge, and start the proxy
 * with `args` and `env`; after the block, each is stopped in reverse order.
 */
export function bridgedChain<B extends { readonly port: number; close(): void }>(
  start: () => Promise<B>,
  tunnels: readonly string[],
  args?: string[],
  env?: Record<string, string>,
): BridgedChain<B> {
  const fixture: Partial<{ -readonly [K in keyof BridgedChain<B>]: BridgedChain<B>[K] }> = {};
  beforeAll(async () => {
    const backend = (fixture.backend = await start());
    const chain = (fixture.chain = realChain());
    for (const tunnel of tunnels) chain.serve(tunnel, { kind: "bridge", port: backend.port });
    fixture.proxy = await chain.proxy(args, env);
  });
  afterAll(async () => {
    await fixture.proxy?.stop();
    fixture.chain?.close();
    fixture.backend?.close();
  });
  return fixture as BridgedChain<B>;
}

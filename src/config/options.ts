// Every flag: its environment variable, default, help text and the valibot schema for its value.
import * as v from "valibot";
import { parseListenAddress, type ListenAddress } from "./listen.ts";
import { isValidTemplate } from "../protocol/hostname.ts";
import { isFleetToken, isNodeId, parseFleetUrl, redactUrl } from "./fleet-url.ts";
import {
  count, duration, firstInvalidHostname, flagSwitch, hostnameList, oneOf, parseAllowlist, parseRange, parseTrusted, parsed,
  positiveDuration, type Schema, type TrustedProxies,
} from "./values.ts";

/** Edge worker threads when neither --workers nor WORKERS is given: one, chosen by measurement (README, Performance). */
export const DEFAULT_WORKERS = 1;
export const MAX_WORKERS = 64;

export interface OptionSpec<T> {
  readonly flag: string;
  readonly env: string;
  /** The default as text, parsed by the same schema; undefined when derived from other values. */
  readonly fallback: string | undefined;
  /** Empty for a switch: the flag takes no value, its variable takes true/false. */
  readonly metavar: string;
  readonly help: string;
  /** What a valid value looks like; a function when the message names the bad part of the value. */
  readonly expected: string | ((value: string) => string);
  readonly schema: Schema<T>;
  /** How a value is shown in an error message, when it may hold a secret (a URL's password). */
  readonly shown?: (value: string) => string;
}

function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

function urlProblem(text: string): string {
  const check = parseFleetUrl(text);
  return "problem" in check ? check.problem : "";
}

const WARM_EXPECTED = "comma-separated tunnel hostnames like cft-db-1.example.com";

export const OPTIONS = {
  listen: option({ flag: "listen", env: "LISTEN_ADDR", fallback: ":19000", metavar: "ADDR",
    help: "address to accept clients on (:PORT = every interface)",
    expected: "an address like :19000, 127.0.0.1:19000 or [::1]:19000", schema: parsed(parseListenAddress) }),
  portRange: option({ flag: "port-range", env: "PORT_RANGE_START/PORT_RANGE_END", fallback: undefined, metavar: "A-B",
    help: "local ports handed to tunnel processes (default 20000-20100)",
    expected: "a range like 20000-20100", schema: parsed(parseRange) }),
  portRangeStart: option({ flag: "port-range", env: "PORT_RANGE_START", fallback: "20000", metavar: "PORT",
    help: "", expected: "a port number 1-65535", schema: count(0) }),
  portRangeEnd: option({ flag: "port-range", env: "PORT_RANGE_END", fallback: "20100", metavar: "PORT",
    help: "", expected: "a port number 1-65535", schema: count(0) }),
  idleTimeout: option({ flag: "idle-timeout", env: "IDLE_TIMEOUT", fallback: "300s", metavar: "D",
    help: "stop a tunnel this long after its last connection closed (0 = at once)",
    expected: "a duration like 300s or 1500ms", schema: duration }),
  startupTimeout: option({ flag: "startup-timeout", env: "STARTUP_TIMEOUT", fallback: "15s", metavar: "D",
    help: "give up on a tunnel that is not listening after this long",
    expected: "a duration above 0 like 15s or 1500ms", schema: positiveDuration }),
  helloTimeout: option({ flag: "hello-timeout", env: "READ_HELLO_TIMEOUT", fallback: "10s", metavar: "D",
    help: "close a client that has not sent a complete ClientHello this long after accept",
    expected: "a duration above 0 like 10s or 1500ms", schema: positiveDuration }),
  restartBackoff: option({ flag: "restart-backoff", env: "RESTART_BACKOFF", fallback: "2s", metavar: "D",
    help: "wait this long x attempt before restarting a crashed tunnel; also the cooldown after a failed start",
    expected: "a duration above 0 like 2s or 1500ms", schema: positiveDuration }),
  maxRestarts: option({ flag: "max-restarts", env: "MAX_RESTARTS", fallback: "3", metavar: "N",
    help: "restarts in a row before a tunnel is marked failed",
    expected: "a whole number >= 0", schema: count(0) }),
  logFormat: option({ flag: "log-format", env: "LOG_FORMAT", fallback: "plain", metavar: "plain|json",
    help: "log line format (stderr)", expected: "plain or json", schema: oneOf(["plain", "json"]) }),
  logLevel: option({ flag: "log-level", env: "LOG_LEVEL", fallback: "info", metavar: "LEVEL",
    help: "lowest level logged: debug, info, warn, error",
    expected: "debug, info, warn or error", schema: oneOf(["debug", "info", "warn", "error"]) }),
  cloudflaredPath: option({ flag: "cloudflared-path", env: "CLOUDFLARED_PATH", fallback: "cloudflared", metavar: "P",
    help: "cloudflared executable (looked up on PATH)", expected: "a non-empty path",
    schema: v.pipe(v.string(), v.minLength(1)) }),
  cloudflaredArgs: option({ flag: "cloudflared-arg", env: "CLOUDFLARED_ARGS", fallback: "", metavar: "ARG",
    help: "extra argument for cloudflared, one per flag (repeatable; the variable is space-separated)",
    expected: "arguments", schema: v.pipe(v.string(), v.transform((text) => text.split(" ").filter((a) => a !== ""))) }),
  hostnameTemplate: option({ flag: "hostname-template", env: "HOSTNAME_TEMPLATE", fallback: "cft-{sni}", metavar: "T",
    help: "tunnel hostname from the SNI: {sni}, {first} (first label), {rest} (the other labels)",
    expected: "a hostname template using {sni}, {first} and {rest}, e.g. cft-{sni}",
    schema: v.pipe(v.string(), v.check(isValidTemplate)) }),
  onNoSni: option({ flag: "on-no-sni", env: "ON_NO_SNI", fallback: "reject", metavar: "reject|ok",
    help: "without SNI: TLS alert and close, or write OK\\n (debugging only)",
    expected: "reject or ok", schema: oneOf(["reject", "ok"]) }),
  allowSniSuffix: option({ flag: "allow-sni-suffix", env: "ALLOW_SNI_SUFFIX", fallback: "", metavar: "LIST|any",
    help: "comma-separated domain suffixes the SNI (and an admin-started tunnel hostname) must end in, or any; required with a service token",
    expected: "comma-separated domain suffixes like .example.com, or any",
    schema: parsed(parseAllowlist) }),
  maxTunnels: option({ flag: "max-tunnels", env: "MAX_TUNNELS", fallback: undefined, metavar: "N",
    help: "tunnel processes running at once (default: size of the port range)",
    expected: "a whole number >= 1", schema: count(1) }),
  maxConnections: option({ flag: "max-connections", env: "MAX_CONNECTIONS", fallback: "10000", metavar: "N",
    help: "open client connections in total (0 = no limit)", expected: "a whole number >= 0", schema: count(0) }),
  maxConnsPerIp: option({ flag: "max-conns-per-ip", env: "MAX_CONNS_PER_IP", fallback: "0", metavar: "N",
    help: "open client connections per source address (0 = no limit)", expected: "a whole number >= 0", schema: count(0) }),
  trustedProxies: option({ flag: "trusted-proxies", env: "TRUSTED_PROXIES", fallback: "", metavar: "CIDRS|any",
    help: "peers allowed to send a PROXY header: comma-separated CIDRs or addresses, or any (default: none)",
    expected: "comma-separated CIDRs like 10.0.0.0/8,::1 or any", schema: parsed(parseTrusted) }),
  sendProxy: option({ flag: "send-proxy", env: "SEND_PROXY", fallback: "off", metavar: "off|v1|v2",
    help: "prepend a PROXY header with the client address when none came in (the backend must speak PROXY)",
    expected: "off, v1 or v2", schema: oneOf(["off", "v1", "v2"]) }),
  metricsListen: option({ flag: "metrics-listen", env: "METRICS_LISTEN", fallback: "", metavar: "ADDR",
    help: "address of the admin server (/metrics, /healthz, /tunnels); usually 127.0.0.1:19090 (default: off)",
    expected: "an address like 127.0.0.1:19090", schema: parsed((t) => (t === "" ? null : parseListenAddress(t))) }),
  drainTimeout: option({ flag: "drain-timeout", env: "DRAIN_TIMEOUT", fallback: "30s", metavar: "D",
    help: "on SIGTERM/SIGINT, let open connections finish for this long (0 = close them at once)",
    expected: "a duration like 30s or 1500ms", schema: duration }),
  cancelFanout: option({ flag: "cancel-fanout", env: "CANCEL_FANOUT", fallback: "4", metavar: "N",
    help: "tunnels a plaintext PostgreSQL CancelRequest is forwarded to, by client address (0 = refuse cancels)",
    expected: "a whole number >= 0", schema: count(0) }),
  reusePort: option({ flag: "reuse-port", env: "REUSE_PORT", fallback: "false", metavar: "",
    help: "bind the client and admin listeners with SO_REUSEPORT, so a new process can start before the old one drains",
    expected: "true or false (or 1 or 0)", schema: flagSwitch }),
  warm: option({ flag: "warm", env: "WARM_TUNNELS", fallback: "", metavar: "LIST",
    help: "tunnel hostnames started at boot and pinned (comma-separated; count against --max-tunnels)",
    expected: (text) => {
      const bad = firstInvalidHostname(text);
      return bad === undefined ? WARM_EXPECTED : `${WARM_EXPECTED} (${JSON.stringify(bad)} is not a valid hostname)`;
    },
    schema: parsed((text) => (firstInvalidHostname(text) === undefined ? hostnameList(text) : undefined)) }),
  adminTokenFile: option({ flag: "admin-token-file", env: "ADMIN_TOKEN_FILE", fallback: undefined, metavar: "P",
    help: "file holding the bearer token admin POST/DELETE require, read at start (without one: loopback admin only)",
    expected: "a path to a file holding the admin token", schema: v.pipe(v.string(), v.minLength(1)) }),
  workers: option({ flag: "workers", env: "WORKERS", fallback: String(DEFAULT_WORKERS), metavar: "N",
    help: "edge threads accepting clients on the listen address",
    expected: `a whole number 1-${MAX_WORKERS}`, schema: count(1, MAX_WORKERS) }),
  cancelRate: option({ flag: "cancel-rate", env: "CANCEL_RATE", fallback: "10", metavar: "N",
    help: "plaintext PostgreSQL CancelRequests per second per client address, in bursts of N; more are closed (0 = unlimited)",
    expected: "a whole number >= 0", schema: count(0) }),
  tunnelStartRate: option({ flag: "tunnel-start-rate", env: "TUNNEL_START_RATE", fallback: "20", metavar: "N",
    help: "new tunnel processes per second, in bursts of N; connections for more new hostnames are refused (0 = unlimited)",
    expected: "a whole number >= 0", schema: count(0) }),
  evictMinIdle: option({ flag: "evict-min-idle", env: "EVICT_MIN_IDLE", fallback: "0", metavar: "D",
    help: "at --max-tunnels, never evict a tunnel that carried a connection this recently (0 = off; e.g. 60s under attack)",
    expected: "a duration like 60s or 1500ms", schema: duration }),
  proxyReplay: option({ flag: "proxy-replay", env: "PROXY_REPLAY", fallback: "on", metavar: "on|off",
    help: "pass a trusted PROXY header on to the tunnel (off: use it for identity only; --send-proxy then generates one)",
    expected: "on or off", schema: oneOf(["on", "off"]) }),
  fleetRedis: option({ flag: "fleet-redis", env: "FLEET_REDIS_URL", fallback: "", metavar: "URL",
    help: "join a fleet of proxies through this Redis/Valkey server: redis[s]://[user:password@]host[:port][/db] (default: off)",
    expected: (text) => `a URL like redis://host:6379 or rediss://user:password@host:6380/0 (${urlProblem(text)})`,
    schema: parsed((text) => (text === "" ? null : "ok" in parseFleetUrl(text) ? text : undefined)), shown: redactUrl }),
  fleetName: option({ flag: "fleet-name", env: "FLEET_NAME", fallback: "tcp-tunnel-proxy", metavar: "NAME",
    help: "prefix of every fleet key and channel, so fleets can share a server",
    expected: "1-64 letters, digits, '.', '_' or '-'", schema: parsed((text) => (isFleetToken(text) ? text : undefined)) }),
  nodeId: option({ flag: "node-id", env: "NODE_ID", fallback: undefined, metavar: "ID",
    help: "this proxy's name in the fleet and the status page (default: <hostname>:<listen port>)",
    expected: "1-128 letters, digits, '.', '_', '-' or ':'", schema: parsed((text) => (isNodeId(text) ? text : undefined)) }),
} as const;

export type OptionKey = keyof typeof OPTIONS;
export type { ListenAddress, TrustedProxies };

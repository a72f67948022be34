// Configuration: flags > environment > defaults, each validated with valibot, then cross-checked, before anything listens.
import { OPTIONS, type OptionKey, type ListenAddress, type TrustedProxies } from "./options.ts";
import { cloudflaredArgs, fail, pick, readFlags, validate, type Environment, type Flags, type Raw } from "./sources.ts";
import { readTokenFile } from "./token-file.ts";
import { secretValues, serviceTokenConfigured } from "./secrets.ts";
import type { SniAllowlist } from "./values.ts";
import { isAllowed, normaliseSuffixes } from "../protocol/hostname.ts";
import { ProxyError } from "../errors.ts";
import { helpText } from "./help.ts";

export type { Environment };

export interface Config {
  readonly listen: ListenAddress;
  readonly portRange: { readonly start: number; readonly end: number };
  readonly idleTimeoutMs: number;
  readonly startupTimeoutMs: number;
  readonly helloTimeoutMs: number;
  readonly restartBackoffMs: number;
  readonly maxRestarts: number;
  readonly logFormat: "plain" | "json";
  readonly logLevel: "debug" | "info" | "warn" | "error";
  readonly cloudflaredPath: string;
  readonly cloudflaredArgs: readonly string[];
  readonly hostnameTemplate: string;
  readonly onNoSni: "reject" | "ok";
  /** Suffixes the SNI (and an admin-named tunnel hostname) must end in, lower-case, no leading dot; empty: any. */
  readonly allowSniSuffix: readonly string[];
  /** How --allow-sni-suffix was given: not at all, `any` on purpose, or as a list. */
  readonly sniAllowlist: SniAllowlist["mode"];
  /** A Cloudflare Access service token reaches the tunnels (environment or cloudflared arguments). Never its value. */
  readonly serviceToken: boolean;
  /** The secret values cloudflared is given, to hide wherever its output quotes them. Never log them. */
  readonly secrets: readonly string[];
  readonly maxTunnels: number;
  readonly maxConnections: number;
  readonly maxConnsPerIp: number;
  readonly trustedProxies: TrustedProxies;
  readonly sendProxy: "off" | "v1" | "v2";
  readonly metricsListen: ListenAddress | null;
  readonly drainTimeoutMs: number;
  /** Tunnels a plaintext CancelRequest is forwarded to; 0 refuses cancels. */
  readonly cancelFanout: number;
  readonly reusePort: boolean;
  /** Tunnel hostnames started at boot and pinned: lower-case, valid, no duplicates, at most maxTunnels. */
  readonly warm: readonly string[];
  /** The bearer token for admin POST/DELETE; null without --admin-token-file. Never log it. */
  readonly adminToken: string | null;
  readonly workers: number;
  /** CancelRequests per second per client address, in bursts of as many; 0: unlimited. */
  readonly cancelRate: number;
  /** New tunnel processes per second, in bursts of as many; 0: unlimited. */
  readonly tunnelStartRate: number;
  /** At the cap, a tunnel used this recently is never evicted for another hostname; 0: off. */
  readonly evictMinIdleMs: number;
  /** Whether a trusted PROXY header is passed on to the tunnel (else it is identity only). */
  readonly proxyReplay: boolean;
  /** The fleet's Redis URL; null without --fleet-redis. It may hold a password: log `redactUrl(fleetRedis)`. */
  readonly fleetRedis: string | null;
  readonly fleetName: string;
  /** --node-id; null: `<hostname>:<listen port>`, known once the listener is bound. */
  readonly nodeId: string | null;
}

export type LoadResult =
  | { readonly kind: "run"; readonly config: Config }
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "version" };

/** Options read and validated one by one; the port range and cloudflared arguments have their own rules. */
const PLAIN_KEYS = (Object.keys(OPTIONS) as OptionKey[]).filter((key) => !key.startsWith("portRange") && key !== "cloudflaredArgs");

function portRange(flags: Flags, env: Environment) {
  const flag = flags["port-range"];
  let start: number;
  let end: number;
  let source: Raw;
  if (typeof flag === "string") {
    source = { value: flag, source: "--port-range" };
    ({ start, end } = validate("portRange", source));
  } else {
    const startRaw = pick(flags, env, "portRangeStart") as Raw;
    const endRaw = pick(flags, env, "portRangeEnd") as Raw;
    start = validate("portRangeStart", startRaw);
    end = validate("portRangeEnd", endRaw);
    if (start < 1 || start > 65535) fail(startRaw.source, startRaw.value, "a port number 1-65535");
    if (end < 1 || end > 65535) fail(endRaw.source, endRaw.value, "a port number 1-65535");
    source = { value: `${start}-${end}`, source: "PORT_RANGE_START/PORT_RANGE_END" };
  }
  if (start < 1 || end > 65535) fail(source.source, source.value, "ports 1-65535");
  if (start > end) fail(source.source, source.value, "a range whose start is not above its end");
  return { start, end };
}

/** The only I/O of loading: the token is read once, here, so a bad file stops the start instead of the first POST. */
function adminToken(raw: Raw | undefined): string | null {
  if (raw === undefined) return null;
  const result = readTokenFile(raw.value);
  if ("problem" in result) fail(raw.source, raw.value, `a readable file holding the admin token (${result.problem})`);
  return result.token;
}

const OPEN_RELAY =
  "--allow-sni-suffix (ALLOW_SNI_SUFFIX) is required when a service token is configured (TUNNEL_SERVICE_TOKEN_ID/_SECRET, " +
  "or --service-token-id/--service-token-secret in --cloudflared-arg): without it any client's SNI picks the host " +
  "cloudflared sends the token to; list your domains, or set --allow-sni-suffix any to accept that";

export function loadConfig(argv: readonly string[], env: Environment): LoadResult {
  const flags = readFlags(argv);
  if (flags.help === true) return { kind: "help", text: helpText() };
  if (flags.version === true) return { kind: "version" };

  const values: Record<string, unknown> = {};
  const raws: Record<string, Raw> = {};
  for (const key of PLAIN_KEYS) {
    const raw = pick(flags, env, key);
    if (raw === undefined) continue;
    raws[key] = raw;
    values[key] = validate(key, raw);
  }
  const range = portRange(flags, env);
  const rangeSize = range.end - range.start + 1;
  const listen = values.listen as ListenAddress;
  if (listen.port >= range.start && listen.port <= range.end) {
    fail(raws.listen!.source, raws.listen!.value, `a port outside the tunnel port range ${range.start}-${range.end}`);
  }
  const metrics = values.metricsListen as ListenAddress | null;
  const clashes = metrics !== null && metrics.port !== 0 && (metrics.port === listen.port || (metrics.port >= range.start && metrics.port <= range.end));
  if (clashes) {
    const raw = raws.metricsListen!;
    fail(raw.source, raw.value, "a port other than the listen port and outside the tunnel port range");
  }
  const maxTunnels = (values.maxTunnels as number | undefined) ?? rangeSize;
  if (maxTunnels > rangeSize) fail(raws.maxTunnels!.source, raws.maxTunnels!.value, `1 to ${rangeSize} (the size of the port range)`);
  const warm = values.warm as string[];
  if (warm.length > maxTunnels) fail(raws.warm!.source, raws.warm!.value, `at most ${maxTunnels} hostnames (--max-tunnels)`);
  const allowlist = values.allowSniSuffix as SniAllowlist;
  const suffixes = allowlist.mode === "list" ? normaliseSuffixes(allowlist.suffixes) : [];
  const outside = warm.find((name) => !isAllowed(name, suffixes));
  if (outside !== undefined) {
    fail(raws.warm!.source, raws.warm!.value, `tunnel hostnames within --allow-sni-suffix (${JSON.stringify(outside)} is not)`);
  }
  const extraArgs = cloudflaredArgs(flags, env);
  const serviceToken = serviceTokenConfigured(env, extraArgs);
  if (serviceToken && allowlist.mode === "unset") throw new ProxyError("config_invalid", OPEN_RELAY);

  const config: Config = {
    listen,
    portRange: range,
    idleTimeoutMs: values.idleTimeout as number,
    startupTimeoutMs: values.startupTimeout as number,
    helloTimeoutMs: values.helloTimeout as number,
    restartBackoffMs: values.restartBackoff as number,
    maxRestarts: values.maxRestarts as number,
    logFormat: values.logFormat as Config["logFormat"],
    logLevel: values.logLevel as Config["logLevel"],
    cloudflaredPath: values.cloudflaredPath as string,
    cloudflaredArgs: extraArgs,
    hostnameTemplate: values.hostnameTemplate as string,
    onNoSni: values.onNoSni as Config["onNoSni"],
    allowSniSuffix: suffixes,
    sniAllowlist: allowlist.mode,
    serviceToken,
    secrets: secretValues(env, extraArgs),
    maxTunnels,
    maxConnections: values.maxConnections as number,
    maxConnsPerIp: values.maxConnsPerIp as number,
    trustedProxies: values.trustedProxies as TrustedProxies,
    sendProxy: values.sendProxy as Config["sendProxy"],
    metricsListen: metrics,
    drainTimeoutMs: values.drainTimeout as number,
    cancelFanout: values.cancelFanout as number,
    reusePort: values.reusePort as boolean,
    warm,
    adminToken: adminToken(raws.adminTokenFile),
    workers: values.workers as number,
    cancelRate: values.cancelRate as number,
    tunnelStartRate: values.tunnelStartRate as number,
    evictMinIdleMs: values.evictMinIdle as number,
    proxyReplay: values.proxyReplay === "on",
    fleetRedis: values.fleetRedis as string | null,
    fleetName: values.fleetName as string,
    nodeId: (values.nodeId as string | undefined) ?? null,
  };
  return { kind: "run", config };
}

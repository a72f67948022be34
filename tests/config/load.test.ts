import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { MAX_WORKERS, OPTIONS } from "../../src/config/options.ts";
import { load } from "./loading.ts";

describe("defaults", () => {
  test("are the documented ones", () => {
    const config = load();
    expect(config.listen).toEqual({ host: "::", port: 19000, text: ":19000" });
    expect(config.portRange).toEqual({ start: 20000, end: 20100 });
    expect(config.idleTimeoutMs).toBe(300_000);
    expect(config.startupTimeoutMs).toBe(15_000);
    expect(config.helloTimeoutMs).toBe(10_000);
    expect(config.restartBackoffMs).toBe(2000);
    expect(config.maxRestarts).toBe(3);
    expect(config.logFormat).toBe("plain");
    expect(config.logLevel).toBe("info");
    expect(config.cloudflaredPath).toBe("cloudflared");
    expect(config.cloudflaredArgs).toEqual([]);
    expect(config.hostnameTemplate).toBe("cft-{sni}");
    expect(config.onNoSni).toBe("reject");
    expect(config.allowSniSuffix).toEqual([]);
    expect(config.maxTunnels).toBe(101);
    expect(config.maxConnections).toBe(10000);
    expect(config.maxConnsPerIp).toBe(0);
    expect(config.trustedProxies).toEqual({ any: false, entries: [] });
    expect(config.sendProxy).toBe("off");
    expect(config.metricsListen).toBeNull();
    expect(config.drainTimeoutMs).toBe(30_000);
    expect(config.cancelFanout).toBe(4);
    expect(config.reusePort).toBe(false);
    expect(config.warm).toEqual([]);
    expect(config.adminToken).toBeNull();
    expect(config.workers).toBe(1);
    expect(config.sniAllowlist).toBe("unset");
    expect(config.serviceToken).toBe(false);
    expect(config.cancelRate).toBe(10);
    expect(config.tunnelStartRate).toBe(20);
    expect(config.evictMinIdleMs).toBe(0);
    expect(config.proxyReplay).toBe(true);
    expect(config.fleetRedis).toBeNull();
    expect(config.fleetName).toBe("tcp-tunnel-proxy");
    expect(config.nodeId).toBeNull();
  });

  test("--workers takes 1 to 64", () => {
    expect(MAX_WORKERS).toBe(64);
  });
});

describe("precedence", () => {
  test("environment overrides defaults, flags override the environment", () => {
    const env = { IDLE_TIMEOUT: "60s", READ_HELLO_TIMEOUT: "2s", LISTEN_ADDR: "127.0.0.1:19001" };
    expect(load([], env).idleTimeoutMs).toBe(60_000);
    expect(load([], env).listen.port).toBe(19001);
    expect(load(["--idle-timeout", "5s"], env).idleTimeoutMs).toBe(5000);
    expect(load(["--idle-timeout=7s"], env).helloTimeoutMs).toBe(2000);
  });

  test("the Go program's variables are all honoured", () => {
    const config = load([], {
      LISTEN_ADDR: "[::1]:19002",
      PORT_RANGE_START: "21000",
      PORT_RANGE_END: "21009",
      IDLE_TIMEOUT: "1m",
      STARTUP_TIMEOUT: "20000",
      READ_HELLO_TIMEOUT: "5s",
      RESTART_BACKOFF: "500ms",
      MAX_RESTARTS: "5",
      LOG_FORMAT: "json",
      LOG_LEVEL: "debug",
      CLOUDFLARED_PATH: "/opt/cf",
      CLOUDFLARED_ARGS: "--loglevel  debug",
      HOSTNAME_TEMPLATE: "cft-{first}-{rest}",
      ON_NO_SNI: "ok",
      ALLOW_SNI_SUFFIX: ".ratio1.link, example.com",
      MAX_TUNNELS: "4",
      MAX_CONNECTIONS: "50",
      MAX_CONNS_PER_IP: "3",
      TRUSTED_PROXIES: "10.0.0.0/8, ::1",
      SEND_PROXY: "v2",
      METRICS_LISTEN: "127.0.0.1:19090",
      DRAIN_TIMEOUT: "1m30s",
      CANCEL_FANOUT: "0",
      REUSE_PORT: "true",
      WARM_TUNNELS: "cft-db-1.example.com, CFT-DB-2.example.com",
      WORKERS: "3",
      CANCEL_RATE: "0",
      TUNNEL_START_RATE: "5",
      EVICT_MIN_IDLE: "1m",
      PROXY_REPLAY: "off",
      FLEET_REDIS_URL: "rediss://ttp:pw@redis.internal:6380/2",
      FLEET_NAME: "edge-eu",
      NODE_ID: "edge-1:19000",
    });
    expect(config.listen).toEqual({ host: "::1", port: 19002, text: "[::1]:19002" });
    expect(config.portRange).toEqual({ start: 21000, end: 21009 });
    expect(config.idleTimeoutMs).toBe(60_000);
    expect(config.startupTimeoutMs).toBe(20_000);
    expect(config.helloTimeoutMs).toBe(5000);
    expect(config.restartBackoffMs).toBe(500);
    expect(config.maxRestarts).toBe(5);
    expect(config.logFormat).toBe("json");
    expect(config.logLevel).toBe("debug");
    expect(config.cloudflaredPath).toBe("/opt/cf");
    expect(config.cloudflaredArgs).toEqual(["--loglevel", "debug"]);
    expect(config.hostnameTemplate).toBe("cft-{first}-{rest}");
    expect(config.onNoSni).toBe("ok");
    expect(config.allowSniSuffix).toEqual(["ratio1.link", "example.com"]);
    expect(config.maxTunnels).toBe(4);
    expect(config.maxConnections).toBe(50);
    expect(config.maxConnsPerIp).toBe(3);
    expect(config.trustedProxies).toEqual({ any: false, entries: ["10.0.0.0/8", "::1"] });
    expect(config.sendProxy).toBe("v2");
    expect(config.metricsListen?.port).toBe(19090);
    expect(config.drainTimeoutMs).toBe(90_000);
    expect(config.cancelFanout).toBe(0);
    expect(config.reusePort).toBe(true);
    expect(config.warm).toEqual(["cft-db-1.example.com", "cft-db-2.example.com"]);
    expect(config.workers).toBe(3);
    expect(config.sniAllowlist).toBe("list");
    expect(config.cancelRate).toBe(0);
    expect(config.tunnelStartRate).toBe(5);
    expect(config.evictMinIdleMs).toBe(60_000);
    expect(config.proxyReplay).toBe(false);
    expect(config.fleetRedis).toBe("rediss://ttp:pw@redis.internal:6380/2");
    expect(config.fleetName).toBe("edge-eu");
    expect(config.nodeId).toBe("edge-1:19000");
  });

  test("--port-range wins over the pair of variables", () => {
    expect(load(["--port-range", "25000-25009"], { PORT_RANGE_START: "21000", PORT_RANGE_END: "21009" }).portRange).toEqual({
      start: 25000,
      end: 25009,
    });
  });

  test("listen address forms", () => {
    expect(load(["--listen", ":19000"]).listen.host).toBe("::");
    expect(load(["--listen", "127.0.0.1:19000"]).listen.host).toBe("127.0.0.1");
    expect(load(["--listen", "[::1]:19000"]).listen.host).toBe("::1");
    expect(load(["--listen", "0.0.0.0:443"]).listen.port).toBe(443);
  });

  test("trusted proxies accept any", () => {
    expect(load(["--trusted-proxies", "any"]).trustedProxies).toEqual({ any: true });
  });

  test("max-tunnels defaults to the size of the port range", () => {
    expect(load(["--port-range", "20000-20009"]).maxTunnels).toBe(10);
  });
});

test("--help lists every flag with its environment variable and default", () => {
  const result = loadConfig(["--help"], {});
  if (result.kind !== "help") throw new Error("expected help");
  for (const spec of Object.values(OPTIONS)) {
    expect(result.text).toMatch(new RegExp(`^  --${spec.flag}( |$)`, "m"));
    for (const name of spec.env.split("/")) expect(result.text).toContain(name);
  }
  expect(result.text).toContain("default 300s");
  expect(result.text).toContain("default cft-{sni}");
  expect(result.text).toContain("default none (PROXY headers refused)");
  expect(result.text).toContain("default 20000-20100");
  expect(result.text).toContain("env CANCEL_FANOUT; default 4");
  expect(result.text).toContain("  --reuse-port\n");
  expect(result.text).toContain("env REUSE_PORT (true or false); default false");
  expect(result.text).toContain("env WARM_TUNNELS; default none");
  expect(result.text).toContain("env ADMIN_TOKEN_FILE; default none");
  expect(result.text).toContain("env WORKERS; default 1");
  expect(result.text).toContain("env CANCEL_RATE; default 10");
  expect(result.text).toContain("env TUNNEL_START_RATE; default 20");
  expect(result.text).toContain("env EVICT_MIN_IDLE; default 0");
  expect(result.text).toContain("env PROXY_REPLAY; default on");
  expect(result.text).toContain("env FLEET_REDIS_URL; default off");
  expect(result.text).toContain("env FLEET_NAME; default tcp-tunnel-proxy");
  expect(result.text).toContain("env NODE_ID; default <hostname>:<listen port>");
  expect(result.text).toContain("env ALLOW_SNI_SUFFIX; default unset (any SNI; refused at start with a service token)");
  expect(result.text).toContain("--version");
  expect(result.text).toContain("does not speak PROXY");
});

test("--version is recognised", () => {
  expect(loadConfig(["--version"], {}).kind).toBe("version");
});

import { describe, expect, test } from "bun:test";
import type { Environment } from "../../src/config/load.ts";
import { errorOf, load } from "./loading.ts";

describe("invalid values name the flag or variable, the value and what is expected", () => {
  test.each([
    [["--idle-timeout", "banana"], {}, 'invalid --idle-timeout "banana": expected a duration like 300s or 1500ms'],
    [[], { IDLE_TIMEOUT: "banana" }, 'invalid IDLE_TIMEOUT "banana": expected a duration'],
    [["--startup-timeout", "-1s"], {}, 'invalid --startup-timeout "-1s"'],
    [[], { READ_HELLO_TIMEOUT: "10 s" }, 'invalid READ_HELLO_TIMEOUT "10 s"'],
    [["--restart-backoff", "x"], {}, 'invalid --restart-backoff "x"'],
    [["--drain-timeout", "1y"], {}, 'invalid --drain-timeout "1y"'],
    [["--max-restarts", "-1"], {}, 'invalid --max-restarts "-1": expected a whole number >= 0'],
    [[], { MAX_RESTARTS: "three" }, 'invalid MAX_RESTARTS "three"'],
    [["--log-format", "xml"], {}, 'invalid --log-format "xml": expected plain or json'],
    [[], { LOG_LEVEL: "verbose" }, 'invalid LOG_LEVEL "verbose": expected debug, info, warn or error'],
    [["--on-no-sni", "drop"], {}, 'invalid --on-no-sni "drop": expected reject or ok'],
    [["--send-proxy", "v3"], {}, 'invalid --send-proxy "v3": expected off, v1 or v2'],
    [["--listen", "19000"], {}, 'invalid --listen "19000": expected an address like :19000'],
    [["--listen", ":99999"], {}, 'invalid --listen ":99999"'],
    [[], { LISTEN_ADDR: "[::1:19000" }, 'invalid LISTEN_ADDR "[::1:19000"'],
    [["--port-range", "20000"], {}, 'invalid --port-range "20000": expected a range like 20000-20100'],
    [["--port-range", "20100-20000"], {}, 'invalid --port-range "20100-20000": expected a range whose start is not above its end'],
    [["--port-range", "0-10"], {}, 'invalid --port-range "0-10": expected ports 1-65535'],
    [["--port-range", "65000-70000"], {}, 'invalid --port-range "65000-70000": expected ports 1-65535'],
    [[], { PORT_RANGE_START: "abc" }, 'invalid PORT_RANGE_START "abc"'],
    [[], { PORT_RANGE_END: "70000" }, 'invalid PORT_RANGE_END "70000": expected a port number 1-65535'],
    [["--listen", ":20050"], {}, 'invalid --listen ":20050": expected a port outside the tunnel port range 20000-20100'],
    [["--max-tunnels", "200"], {}, 'invalid --max-tunnels "200": expected 1 to 101 (the size of the port range)'],
    [["--max-tunnels", "0"], {}, 'invalid --max-tunnels "0": expected a whole number >= 1'],
    [["--max-connections", "lots"], {}, 'invalid --max-connections "lots"'],
    [[], { MAX_CONNS_PER_IP: "1.5" }, 'invalid MAX_CONNS_PER_IP "1.5"'],
    [["--hostname-template", "cft-{host}"], {}, 'invalid --hostname-template "cft-{host}"'],
    [["--hostname-template", "bad_{sni}"], {}, 'invalid --hostname-template "bad_{sni}"'],
    [["--allow-sni-suffix", "good.test,bad suffix"], {}, 'invalid --allow-sni-suffix "good.test,bad suffix"'],
    [["--trusted-proxies", "10.0.0.0/33"], {}, 'invalid --trusted-proxies "10.0.0.0/33"'],
    [[], { TRUSTED_PROXIES: "everyone" }, 'invalid TRUSTED_PROXIES "everyone"'],
    [["--metrics-listen", "19000"], {}, 'invalid --metrics-listen "19000"'],
    [["--metrics-listen", ":19000"], {}, 'invalid --metrics-listen ":19000": expected a port other than the listen port'],
    [["--cloudflared-path", ""], {}, 'invalid --cloudflared-path ""'],
  ] as [string[], Environment, string][])("%p %p", (argv, env, message) => {
    expect(errorOf(argv, env)).toStartWith(message);
  });

  test("unknown flags and missing values are one clear line", () => {
    expect(errorOf(["--bogus"])).toMatch(/^invalid command line: .*--bogus.*\(see --help\)$/);
    expect(errorOf(["--idle-timeout"])).toMatch(/^invalid command line: .*idle-timeout/);
    expect(errorOf(["extra"])).toMatch(/^invalid command line/);
  });
});

describe("zero durations: refused where they make no sense, allowed where 0 has a meaning", () => {
  test.each([
    [["--hello-timeout", "0"], {}, 'invalid --hello-timeout "0": expected a duration above 0 like 10s or 1500ms'],
    [["--hello-timeout", "0s"], {}, 'invalid --hello-timeout "0s": expected a duration above 0'],
    [[], { READ_HELLO_TIMEOUT: "0ms" }, 'invalid READ_HELLO_TIMEOUT "0ms": expected a duration above 0'],
    [["--startup-timeout", "0"], {}, 'invalid --startup-timeout "0": expected a duration above 0 like 15s or 1500ms'],
    [[], { STARTUP_TIMEOUT: "0s" }, 'invalid STARTUP_TIMEOUT "0s": expected a duration above 0'],
    [["--restart-backoff", "0"], {}, 'invalid --restart-backoff "0": expected a duration above 0 like 2s or 1500ms'],
    [[], { RESTART_BACKOFF: "0m" }, 'invalid RESTART_BACKOFF "0m": expected a duration above 0'],
    [["--hello-timeout", "100ns"], {}, 'invalid --hello-timeout "100ns": expected a duration above 0'],
  ] as [string[], Environment, string][])("%p %p", (argv, env, message) => {
    expect(errorOf(argv, env)).toStartWith(message);
  });

  test("the smallest positive values are accepted", () => {
    const config = load(["--hello-timeout", "1", "--startup-timeout", "1ms", "--restart-backoff", "500us"]);
    expect([config.helloTimeoutMs, config.startupTimeoutMs, config.restartBackoffMs]).toEqual([1, 1, 1]);
  });

  test("--idle-timeout 0 (stop at the last close) and --drain-timeout 0 (close at once) stay allowed", () => {
    expect(load(["--idle-timeout", "0"]).idleTimeoutMs).toBe(0);
    expect(load([], { IDLE_TIMEOUT: "0s" }).idleTimeoutMs).toBe(0);
    expect(load(["--drain-timeout", "0"]).drainTimeoutMs).toBe(0);
    expect(load([], { DRAIN_TIMEOUT: "0ms" }).drainTimeoutMs).toBe(0);
  });

  test("long durations are accepted (the clock re-arms in steps)", () => {
    expect(load(["--idle-timeout", "720h"]).idleTimeoutMs).toBe(720 * 3_600_000);
  });
});

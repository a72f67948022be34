import { describe, expect, test } from "bun:test";
import { redactArgs, redactor, secretValues, serviceTokenConfigured } from "../../src/config/secrets.ts";

import { errorOf, load } from "./loading.ts";

const SECRET = "s3cr3t-value-0123456789";

describe("no open relay: a service token needs --allow-sni-suffix", () => {
  test.each([
    [[], { TUNNEL_SERVICE_TOKEN_ID: "id.access" }],
    [[], { TUNNEL_SERVICE_TOKEN_SECRET: SECRET }],
    [["--cloudflared-arg", `--service-token-secret=${SECRET}`], {}],
    [["--cloudflared-arg", "--service-token-id", "--cloudflared-arg", "id.access"], {}],
    [["--cloudflared-arg", `-service-token-secret=${SECRET}`], {}],
    [[], { CLOUDFLARED_ARGS: `--service-token-secret ${SECRET}` }],
    [["--cloudflared-arg", `--secret=${SECRET}`], {}],
    [["--cloudflared-arg", "--id", "--cloudflared-arg", "token-id.access"], {}],
    [["--cloudflared-arg", "-H", "--cloudflared-arg", `Cf-Access-Client-Secret: ${SECRET}`], {}],
    [["--cloudflared-arg", `--header=Authorization: Bearer ${SECRET}`], {}],
  ] as [string[], Record<string, string>][])("%p %p refuses to start, naming the flag and hiding the secret", (argv, env) => {
    const message = errorOf(argv, env);
    expect(message).toContain("--allow-sni-suffix");
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain("\n");
  });

  test("an empty token variable is no token", () => {
    expect(load([], { TUNNEL_SERVICE_TOKEN_ID: "", TUNNEL_SERVICE_TOKEN_SECRET: "" }).serviceToken).toBe(false);
  });

  test("a list or an explicit any lets it start", () => {
    const listed = load(["--allow-sni-suffix", ".Example.COM"], { TUNNEL_SERVICE_TOKEN_SECRET: SECRET });
    expect(listed.allowSniSuffix).toEqual(["example.com"]);
    expect(listed.sniAllowlist).toBe("list");
    expect(listed.serviceToken).toBe(true);
    const open = load([], { ALLOW_SNI_SUFFIX: "any", TUNNEL_SERVICE_TOKEN_SECRET: SECRET });
    expect(open.sniAllowlist).toBe("any");
    expect(open.allowSniSuffix).toEqual([]);
  });

  test("without a token and without a list it starts (the older program's drop-in case)", () => {
    expect(load().sniAllowlist).toBe("unset");
  });

  test("any cannot be mixed with suffixes", () => {
    expect(errorOf(["--allow-sni-suffix", "any,example.com"])).toStartWith('invalid --allow-sni-suffix "any,example.com"');
  });

  test("--warm names outside the allowlist exit 2 like any bad value", () => {
    expect(errorOf(["--allow-sni-suffix", "good.test", "--warm", "cft-a.good.test,cft-b.evil.test"])).toBe(
      'invalid --warm "cft-a.good.test,cft-b.evil.test": expected tunnel hostnames within --allow-sni-suffix ("cft-b.evil.test" is not)',
    );
    expect(load(["--allow-sni-suffix", "good.test", "--warm", "cft-a.good.test"]).warm).toEqual(["cft-a.good.test"]);
    expect(load(["--allow-sni-suffix", "any", "--warm", "cft-b.evil.test"]).warm).toEqual(["cft-b.evil.test"]);
  });
});

describe("secret values are hidden from the log", () => {
  test("flag values whose name contains secret, token or password", () => {
    expect(redactArgs([`--service-token-secret=${SECRET}`, "--service-token-id", "id", "--loglevel", "debug", `-db-password=${SECRET}`, "--TOKEN", SECRET])).toEqual([
      "--service-token-secret=***", "--service-token-id", "***", "--loglevel", "debug", "-db-password=***", "--TOKEN", "***",
    ]);
  });

  test("the token detector reads names, not values", () => {
    expect(serviceTokenConfigured({}, ["--loglevel", "service-token-secret"])).toBe(false);
    expect(serviceTokenConfigured({}, ["--service-token-id=x"])).toBe(true);
    expect(serviceTokenConfigured({}, ["-H", "X-Trace: 1"])).toBe(false);
  });

  test("cloudflared's short aliases and credential headers are hidden too", () => {
    expect(redactArgs(["--secret", SECRET, "--id=abc.access", "-H", `Cf-Access-Client-Secret: ${SECRET}`, "--header=X-Trace: 7"])).toEqual([
      "--secret", "***", "--id=***", "-H", "Cf-Access-Client-Secret: ***", "--header=X-Trace: 7",
    ]);
  });

  test("a line of cloudflared's output loses every secret value and every credential header's value", () => {
    const secrets = secretValues({ TUNNEL_SERVICE_TOKEN_ID: "id.access", TUNNEL_SERVICE_TOKEN_SECRET: SECRET }, ["--db-password=hunter2hunter2"]);
    const hide = redactor(secrets);
    expect(hide(`Cf-Access-Client-Secret: ${SECRET}`)).toBe("Cf-Access-Client-Secret: ***");
    expect(hide("cf-access-client-id: something-else")).toBe("cf-access-client-id: ***");
    expect(hide(`request header="map[Cf-Access-Client-Secret:[${SECRET}]]"`)).not.toContain(SECRET);
    expect(hide("DBG dial with hunter2hunter2 failed")).toBe("DBG dial with *** failed");
    expect(hide("INF Start Websocket listener host=127.0.0.1:20000")).toBe("INF Start Websocket listener host=127.0.0.1:20000");
  });
});

describe("--fleet-redis", () => {
  test("a malformed URL exits 2 without its password", () => {
    const message = errorOf(["--fleet-redis", `redis://ttp:${SECRET}@host:99999`]);
    expect(message).toStartWith('invalid --fleet-redis "redis://***:***@host:99999": expected a URL like');
    expect(message).toContain("the port must be a number from 1 to 65535");
    expect(message).not.toContain(SECRET);
    expect(errorOf([], { FLEET_REDIS_URL: `redis://u:${SECRET}@h/x` })).not.toContain(SECRET);
    expect(load(["--fleet-redis", `redis://u:${SECRET}@h:6379/0`]).fleetRedis).toBe(`redis://u:${SECRET}@h:6379/0`);
  });

  test("names and node ids", () => {
    expect(errorOf(["--fleet-name", "a b"])).toStartWith('invalid --fleet-name "a b"');
    expect(errorOf(["--fleet-name", "x*"])).toStartWith('invalid --fleet-name "x*"');
    expect(errorOf(["--node-id", "has space"])).toStartWith('invalid --node-id "has space"');
    expect(load(["--node-id", "edge-1.example.com:19000"]).nodeId).toBe("edge-1.example.com:19000");
    expect(errorOf(["--fleet-name", "a:b"])).toStartWith('invalid --fleet-name "a:b"');
    expect(errorOf(["--proxy-replay", "yes"])).toBe('invalid --proxy-replay "yes": expected on or off');
    expect(errorOf(["--cancel-rate", "-1"])).toStartWith('invalid --cancel-rate "-1"');
    expect(errorOf(["--evict-min-idle", "soon"])).toStartWith('invalid --evict-min-idle "soon"');
  });
});

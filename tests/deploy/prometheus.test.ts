// deploy/prometheus: promtool accepts the scrape config and the rules, the rules' unit tests pass and show every
// alert both firing and silent, and every metric the rules read is one the binary exposes.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { freePort, startProxy } from "../helpers/proxy-process.ts";
import { adminGet, parseExposition } from "../helpers/admin.ts";
import { DEPLOY, binaryHas, run, tool } from "./tools.ts";

const DIR = resolve(DEPLOY, "prometheus");
const RULES = resolve(DIR, "tcp-tunnel-proxy.rules.yml");
const RULE_TESTS = resolve(DIR, "tcp-tunnel-proxy.rules.test.yml");
const promtool = tool("promtool", "prometheus");

type Rules = { groups: { rules: { alert: string; expr: string }[] }[] };
type RuleTests = { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
const rules = (Bun.YAML.parse(readFileSync(RULES, "utf8")) as Rules).groups.flatMap((group) => group.rules);

describe.skipIf(promtool === null)("promtool", () => {
  test("check config: the scrape config and the rule file it names", async () => {
    const result = await run([promtool as string, "check", "config", "prometheus.yml"], { cwd: DIR });
    expect(result).toMatchObject({ code: 0, out: expect.stringContaining("1 rule files found") });
  });

  test("check rules", async () => {
    expect(await run([promtool as string, "check", "rules", RULES])).toMatchObject({ code: 0, out: expect.stringContaining(`${rules.length} rules found`) });
  });

  test("test rules: every alert's unit tests pass", async () => {
    const result = await run([promtool as string, "test", "rules", "tcp-tunnel-proxy.rules.test.yml"], { cwd: DIR });
    if (result.code !== 0) throw new Error(`promtool test rules failed:\n${result.out}`);
  });
});

test("the unit tests show every alert firing and every alert silent", () => {
  const cases = (Bun.YAML.parse(readFileSync(RULE_TESTS, "utf8")) as RuleTests).tests.flatMap((t) => t.alert_rule_test);
  for (const { alert } of rules) {
    const mine = cases.filter((c) => c.alertname === alert);
    expect({ alert, fires: mine.some((c) => c.exp_alerts.length > 0) }).toEqual({ alert, fires: true });
    expect({ alert, silent: mine.some((c) => c.exp_alerts.length === 0) }).toEqual({ alert, silent: true });
  }
});

const fleetFlags = binaryHas("the check of the rules' metric names against the binary", ["--fleet-redis"]);

test.if(fleetFlags)("every tcp_tunnel_proxy_ metric the rules read is one the binary exposes (with a fleet configured)", async () => {
  // A fleet whose Redis is not there: the proxy serves on and exposes the fleet's metrics too.
  const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0", "--fleet-redis", `redis://127.0.0.1:${freePort()}`]);
  const { types } = parseExposition(await (await adminGet(proxy.adminPort as number, "/metrics")).text());
  await proxy.stop();
  const used = new Set(rules.flatMap((rule) => [...rule.expr.matchAll(/\btcp_tunnel_proxy_[a-z_]+/g)].map((m) => m[0])));
  const family = (name: string) => (types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, ""));
  expect([...used].filter((name) => !types.has(family(name)))).toEqual([]);
});

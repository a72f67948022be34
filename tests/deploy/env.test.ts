// deploy/tcp-tunnel-proxy.env: the binary starts with exactly that environment; it names every variable the binary
// reads and no other, each at its default but the two it must change; with a service token it still starts, and
// without its ALLOW_SNI_SUFFIX the binary refuses to.
import { expect, test } from "bun:test";
import { FAKE_CLOUDFLARED, portRange, proxyCommand, startProxy } from "../helpers/proxy-process.ts";
import { adminGet } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { binaryHas, binaryHelp, parseEnvExample } from "./tools.ts";

/** What the example sets on purpose rather than by default. */
const CHANGED = ["ALLOW_SNI_SUFFIX", "METRICS_LISTEN"];
/** cloudflared's variables, which the proxy reads only to refuse an open relay: unset in the example. */
const TOKEN = ["TUNNEL_SERVICE_TOKEN_ID", "TUNNEL_SERVICE_TOKEN_SECRET"];

const example = parseEnvExample();
const environment = (): Record<string, string> => ({ ...Object.fromEntries(example.active), METRICS_LISTEN: "127.0.0.1:0" });

test("the binary starts with the example's environment (addresses, tunnel ports and cloudflared replaced for the test)", async () => {
  const proxy = await startProxy([], environment());
  const admin = await proxy.waitFor((l) => l.msg === "admin listening");
  expect(await (await adminGet(Number(admin.port), "/healthz")).text()).toBe("ok\n");
  const starting = await proxy.waitFor((l) => l.msg === "starting");
  const set = (name: string) => example.active.get(name) as string;
  expect(starting).toMatchObject({
    allow_sni_suffix: set("ALLOW_SNI_SUFFIX").replace(/^\./, ""),
    hostname_template: set("HOSTNAME_TEMPLATE"),
    max_connections: Number(set("MAX_CONNECTIONS")),
    cancel_fanout: Number(set("CANCEL_FANOUT")),
    workers: Number(set("WORKERS")),
  });
  expect(await proxy.stop()).toBe(0);
});

test("every variable set is the binary's default, except those the example changes on purpose", () => {
  const { defaults } = binaryHelp();
  const differing = [...example.active].filter(([name, value]) => value !== "" && defaults.has(name) && defaults.get(name) !== value);
  expect(differing.map(([name]) => name)).toEqual(CHANGED);
});

test("the service token is documented but left unset", () => {
  expect([...example.unset]).toEqual(TOKEN);
});

const current = binaryHas("the checks of the env example against the binary's variables", [...example.active.keys()]);

test.if(current)("it names every variable the binary reads, and no other", () => {
  const { variables } = binaryHelp();
  expect([...variables].filter((name) => !example.active.has(name))).toEqual([]);
  expect([...example.active.keys()].filter((name) => !variables.has(name))).toEqual([]);
});

test.if(current)("with a service token it starts; without its ALLOW_SNI_SUFFIX the binary exits 2 naming it", async () => {
  const token = { TUNNEL_SERVICE_TOKEN_ID: "id.access", TUNNEL_SERVICE_TOKEN_SECRET: "not-a-real-secret" };
  const proxy = await startProxy([], { ...environment(), ...token });
  expect(await proxy.stop()).toBe(0);
  const open: Record<string, string> = { ...environment(), ...token };
  delete open.ALLOW_SNI_SUFFIX;
  const refused = Bun.spawn([...proxyCommand(), "--port-range", portRange(), "--cloudflared-path", FAKE_CLOUDFLARED], {
    env: { ...withoutExample(process.env), ...open, LISTEN_ADDR: "127.0.0.1:0" }, stdout: "ignore", stderr: "pipe",
  });
  try {
    expect(await within(10_000, refused.exited, "the refusal to start")).toBe(2);
    expect(await new Response(refused.stderr).text()).toContain("--allow-sni-suffix");
  } finally {
    refused.kill("SIGKILL");
  }
});

/** The test runner's environment without any variable the example names, so none leaks in from the shell. */
function withoutExample(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !example.active.has(name) && !example.unset.has(name)));
}

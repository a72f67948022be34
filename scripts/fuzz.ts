// Seeded fuzz run against the compiled proxy: thousands of random and mutated preludes, SNI storms and cancel floods
// over raw sockets, then hostile admin requests (Host, Origin, methods, paths). Asserts the proxy stays up, starts
// no tunnel for invalid or disallowed input nor faster than --tunnel-start-rate, changes nothing for a foreign page
// or name, and leaks no socket.
// Usage: bun run fuzz [--cases N] [--seed S]
import { parseArgs } from "node:util";
import { fuzzCases, runFuzz } from "../tests/helpers/fuzz-cases.ts";
import { startProxy } from "../tests/helpers/proxy-process.ts";
import { metric, openFds, scrape } from "../tests/helpers/admin.ts";
import { isValidHostname } from "../src/protocol/hostname.ts";
import { fuzzAdmin } from "../tests/helpers/fuzz-admin.ts";

const { values } = parseArgs({ options: { cases: { type: "string", default: "5000" }, seed: { type: "string", default: "1" } } });
const count = Number(values.cases);
const seed = Number(values.seed);
if (!process.env.TTP_BINARY) {
  const build = Bun.spawnSync([process.execPath, "run", "build"], { stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) process.exit(1);
  process.env.TTP_BINARY = `${import.meta.dir}/../tcp-tunnel-proxy`;
}
const suffix = "fuzz.test";
const proxy = await startProxy(
  ["--metrics-listen", "127.0.0.1:0", "--log-level", "info", "--hello-timeout", "300ms", "--allow-sni-suffix", suffix,
    "--trusted-proxies", "127.0.0.1", "--max-tunnels", "8"],
  { FAKE_CF_MODE: "echo" },
);
const fdsBefore = openFds(proxy.proc.pid);
const started = performance.now();
const result = await runFuzz(proxy.port, fuzzCases(seed, count, suffix), 64);
const seconds = (performance.now() - started) / 1000;
const admin = await fuzzAdmin(proxy.adminPort as number, seed, Math.max(200, Math.floor(count / 10)));
const samples = await scrape(proxy.adminPort as number);
const starts = proxy.lines.filter((l) => l.msg === "tunnel starting").map((l) => String(l.tunnel));
const badStarts = starts.filter((t) => !isValidHostname(t) || !t.endsWith(`.${suffix}`));
const report = {
  cases: count,
  seed,
  seconds: Math.round((performance.now() - started) / 100) / 10,
  closed: result.closed,
  failed_to_connect: result.failedToConnect,
  alive: proxy.proc.exitCode === null,
  active_connections: metric(samples, "tcp_tunnel_proxy_active_connections"),
  tunnels_started: starts.length,
  bad_tunnel_starts: badStarts,
  start_rate_bound: 20 + Math.ceil(seconds * 20),
  admin_requests: admin.requests,
  admin_breaches: admin.breaches,
  fds_before: fdsBefore,
  fds_after: openFds(proxy.proc.pid),
};
console.log(JSON.stringify(report, null, 2));
const tunnelFds = 3 * new Set(starts).size;
const ok = report.alive && report.closed === count && report.active_connections === 0 && badStarts.length === 0 &&
  report.fds_after <= fdsBefore + tunnelFds && admin.breaches.length === 0 && new Set(starts).size <= report.start_rate_bound + 8;
await proxy.stop();
console.log(ok ? "fuzz: OK" : "fuzz: FAILED");
process.exit(ok ? 0 : 1);

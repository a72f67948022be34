// The README's fleet example, run as written: a Redis, two proxies joining one fleet, and GET /fleet listing both.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FAKE_CLOUDFLARED, ROOT, freePort } from "../helpers/proxy-process.ts";
import { within } from "../helpers/deadline.ts";
import { eventually } from "../helpers/admin.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { requireRedis } from "../helpers/fleet.ts";

const MARKER = "<!-- fleet-example";
const noRedis = requireRedis();
const noCurl = Bun.which("curl") === null ? "curl not installed (apt-get install curl)" : null;
if (noCurl !== null) console.warn(`SKIPPED the README's fleet example: ${noCurl}`);
test.if(noCurl !== null && process.env.CI === "true")("CI has curl for the README's fleet example", () => {
  throw new Error(`the README's fleet example cannot run in CI: ${noCurl}`);
});

/** The shell block right after the marker comment in README.md. */
function readmeBlock(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const marker = readme.indexOf(MARKER);
  const fence = readme.indexOf("```sh\n", marker);
  if (marker < 0 || fence < 0 || readme.slice(marker, fence).split("\n").length > 2) {
    throw new Error(`README has no fleet-example block: a \`${MARKER}: tests/e2e/fleet-readme.test.ts runs this block as written -->\` line right before a \`\`\`sh fence`);
  }
  const start = fence + "```sh\n".length;
  return readme.slice(start, readme.indexOf("```", start));
}

/** Puts `tcp-tunnel-proxy` (the binary under test, or a wrapper running the source) in `dir`; returns its path. */
function install(dir: string): string {
  const target = join(dir, "tcp-tunnel-proxy");
  if (process.env.TTP_BINARY) symlinkSync(process.env.TTP_BINARY, target);
  else {
    writeFileSync(target, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} run ${JSON.stringify(join(ROOT, "src/main.ts"))} "$@"\n`);
    chmodSync(target, 0o755);
  }
  return target;
}

/** Live processes of process group `group` (the group field of /proc/<pid>/stat; zombies left out). */
function inGroup(group: number): number[] {
  return readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    try {
      const [state, , pgrp] = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ").at(-1)?.split(" ") ?? [];
      return Number(pgrp) === group && state !== "Z";
    } catch {
      return false;
    }
  });
}

let dir: string | undefined;
/** The example's shell leads a process group of its own: its background jobs (Redis, the proxies) are in it too. */
let group: number | null = null;
let redis: RedisServer | null = null;
const killGroup = () => {
  if (group === null) return;
  try {
    process.kill(-group, "SIGKILL");
  } catch {
    // Already gone.
  }
};
afterAll(async () => {
  killGroup();
  await redis?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test.skipIf(noRedis !== null || noCurl !== null)("the README's fleet example starts two members and /fleet lists both", async () => {
  const block = readmeBlock();
  dir = mkdtempSync(join(tmpdir(), "ttp-fleet-readme-"));
  const [listenA, listenB, adminA, adminB] = [freePort(), freePort(), freePort(), freePort()].map((port) => `127.0.0.1:${port}`);
  const env: Record<string, string> = {
    ...process.env,
    PATH: `${dir}:${process.env.PATH}`,
    TCP_TUNNEL_PROXY: install(dir),
    REDIS_PORT: String(freePort()),
    LISTEN_A: listenA as string,
    LISTEN_B: listenB as string,
    ADMIN_A: adminA as string,
    ADMIN_B: adminB as string,
    CLOUDFLARED_PATH: FAKE_CLOUDFLARED,
  };
  // An example that points at a Redis of the reader's instead of starting one gets one here.
  if (!block.includes("redis-server")) {
    redis = await startRedis();
    env.FLEET_REDIS_URL = redis.url;
  }
  const output = join(dir, "output");
  const shell = Bun.spawn(["setsid", "bash", "-ec", block], { cwd: dir, env, stdin: "ignore", stdout: Bun.file(output), stderr: "pipe" });
  group = shell.pid;
  const errors = new Response(shell.stderr).text();
  const code = await within(20_000, shell.exited, "the example's end (its last command prints /fleet)").catch(async (error: Error) => {
    killGroup();
    throw new Error(`${error.message}; it printed:\n${readFileSync(output, "utf8")}\n${await errors}`);
  });
  expect(code).toBe(0);

  const lines = readFileSync(output, "utf8").split("\n").filter((line) => line.startsWith("["));
  const members = JSON.parse(lines.at(-1) ?? "null") as { node_id: string; listen: string }[];
  expect(members.map(({ node_id, listen }) => ({ node_id, listen }))).toEqual([
    { node_id: "proxy-a", listen: listenA as string },
    { node_id: "proxy-b", listen: listenB as string },
  ]);
  // The example's own processes are what answered: stopping its group ends them.
  process.kill(-shell.pid, "SIGTERM");
  await within(10_000, eventually(() => inGroup(shell.pid), (pids) => pids.length === 0, 10_000), "the example's processes exiting on SIGTERM");
  group = null;
}, 30_000);

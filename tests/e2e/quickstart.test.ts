// The README's quick start, run as written in a fresh copy of the repository: install, build and run the proxy; and
// its second command is the one CI runs.
import { expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ROOT, readLogLines, type LogLine } from "../helpers/proxy-process.ts";
import { within } from "../helpers/deadline.ts";

/** The shell blocks after the README's quick-start marker. */
function quickStart(): [string, string] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const marker = readme.indexOf("<!-- quick-start");
  if (marker < 0) throw new Error("README has no quick-start marker");
  const blocks: string[] = [];
  let at = marker;
  for (let i = 0; i < 2; i++) {
    const start = readme.indexOf("```sh\n", at) + "```sh\n".length;
    const end = readme.indexOf("```", start);
    blocks.push(readme.slice(start, end));
    at = end + 3;
  }
  return blocks as [string, string];
}

/** The repository's tracked files, copied: what a fresh clone holds. */
function freshCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "ttp-quickstart-"));
  const files = Bun.spawnSync(["git", "ls-files", "-z"], { cwd: ROOT }).stdout.toString().split("\0").filter((f) => f !== "");
  for (const file of files) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(ROOT, file), join(dir, file));
  }
  return dir;
}

/** Processes running `tcp-tunnel-proxy` with `dir` as their working directory (the block starts it as ./tcp-tunnel-proxy). */
function processesIn(dir: string): number[] {
  return readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).flatMap((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/cwd`) === dir && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("tcp-tunnel-proxy") ? [Number(pid)] : [];
    } catch {
      return [];
    }
  });
}

test("the second block installs and runs the tests: the command CI runs", () => {
  const [, tests] = quickStart();
  const command = tests.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
  expect(command).toEqual(["npm install -g bun@1.4.5 && bun install && bun run test"]);
  expect(readFileSync(join(ROOT, ".ci/run"), "utf8")).toContain("\nbun run test\n");
});

test("the first block installs, builds and runs the proxy in a fresh copy of the repository", async () => {
  const [run] = quickStart();
  const dir = freshCopy();
  const lines: LogLine[] = [];
  // npm's global prefix is the copy's own: `npm install -g` must not replace the bun that runs this very test.
  const prefix = join(dir, ".npm-global");
  const shell = Bun.spawn(["bash", "-ec", run], {
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      ...process.env,
      npm_config_prefix: prefix,
      PATH: `${join(prefix, "bin")}:${process.env.PATH}`,
      LOG_FORMAT: "json",
      LISTEN_ADDR: "127.0.0.1:0",
      PORT_RANGE_START: "31500",
      PORT_RANGE_END: "31599",
    },
  });
  let listening: (line: LogLine) => void = () => undefined;
  const listened = new Promise<LogLine>((resolve) => (listening = resolve));
  const logs = readLogLines(shell.stderr, (line) => {
    lines.push(line);
    if (line.msg === "listening") listening(line);
  });
  try {
    const line = await within(180_000, Promise.race([listened, shell.exited.then((code) => {
      throw new Error(`the block exited ${code} before the proxy listened: ${JSON.stringify(lines.slice(-5))}`);
    })]), "the proxy built from a fresh copy listening");
    expect(Number(line.port)).toBeGreaterThan(0);
    expect(Bun.spawnSync([join(prefix, "bin", "bun"), "--version"]).stdout.toString().trim()).toBe("1.4.5");
    expect(lines.find((l) => l.msg === "starting")?.version).toBe(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
  } finally {
    for (const pid of processesIn(dir)) process.kill(pid, "SIGTERM");
    await within(20_000, shell.exited, "the proxy's exit on SIGTERM");
    await logs;
    rmSync(dir, { recursive: true, force: true });
  }
}, 240_000);

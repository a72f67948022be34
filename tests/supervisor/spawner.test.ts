// The real spawner: process groups, exits seen from the process itself, last lines first; the cloudflared check.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isProxyError } from "../../src/errors.ts";
import { bunSpawner, cloudflaredProblem } from "../../src/supervisor/spawner.ts";
import { FAKE_CLOUDFLARED } from "../helpers/proxy-process.ts";
import { gone } from "./real.ts";
import { within } from "../helpers/deadline.ts";
import { isAlive } from "../helpers/admin.ts";

const spawner = bunSpawner({ setpriv: Bun.which("setpriv") });

/** Spawns `sh -c script`, collecting its output lines; resolves the first line as a number (a pid it printed). */
function shell(script: string) {
  const lines: string[] = [];
  let first: (line: string) => void = () => undefined;
  const firstLine = new Promise<string>((resolve) => (first = resolve));
  const child = spawner.spawn(["sh", "-c", script], (line) => {
    lines.push(line);
    first(line);
  });
  return { child, lines, firstPid: firstLine.then(Number) };
}

describe("bunSpawner", () => {
  test("the child leads its own process group, through the setpriv wrapper", async () => {
    const { child, firstPid } = shell("echo $$; exec sleep 3600");
    expect(await within(2000, firstPid, "the child printing its pid")).toBe(child.pid);
    const pgid = Number(readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]?.split(" ")[2]);
    expect(pgid).toBe(child.pid);
    child.kill("SIGTERM");
    expect(await within(2000, child.exited, "the exit after SIGTERM")).toEqual({ code: null, signal: "SIGTERM" });
  });

  test("the exit is reported although a descendant holds the pipes, and the descendant is killed with it", async () => {
    const { child, firstPid } = shell("sleep 3600 & echo $!; exit 3");
    const descendant = await within(2000, firstPid, "the descendant's pid");
    expect(await within(1000, child.exited, "the exit of a process whose descendant holds its pipes")).toEqual({ code: 3, signal: null });
    await within(1000, gone(descendant), "the descendant ending once its group leader exited");
  });

  test("SIGTERM goes to the whole group", async () => {
    const { child, firstPid } = shell("sleep 3600 & echo $!; wait");
    const descendant = await within(2000, firstPid, "the descendant's pid");
    expect(isAlive(descendant)).toBe(true);
    child.kill("SIGTERM");
    await within(1000, child.exited, "the leader's exit");
    await within(1000, gone(descendant), "the descendant ending on the group's SIGTERM");
  });

  test("the last lines arrive before the exit is reported", async () => {
    const { child, lines } = shell("echo one; echo 'ERR listen tcp: bind: address already in use' >&2; exit 1");
    await within(2000, child.exited, "the exit");
    expect(lines.sort()).toEqual(["ERR listen tcp: bind: address already in use", "one"]);
  });

  test("a program that is not there is a spawn_failed error naming it", () => {
    let error: unknown;
    try {
      spawner.spawn(["/nonexistent/cloudflared", "access", "tcp"], () => undefined);
    } catch (caught) {
      error = caught;
    }
    expect(isProxyError(error, "spawn_failed")).toBe(true);
    expect((error as Error).message).toContain("/nonexistent/cloudflared not found");
  });
});

describe("cloudflaredProblem", () => {
  const dir = mkdtempSync(join(tmpdir(), "ttp-cf-"));
  const plain = join(dir, "cloudflared");
  writeFileSync(plain, "#!/bin/sh\n");
  chmodSync(plain, 0o644);

  test("null for an executable, by path or on PATH", () => {
    expect(cloudflaredProblem(FAKE_CLOUDFLARED)).toBeNull();
    expect(cloudflaredProblem("sh")).toBeNull();
  });

  test.each([
    ["cloudflared-not-installed-here", "not found on PATH"],
    ["/nonexistent/cloudflared", "does not exist"],
    [plain, "is not executable"],
    [dir, "is not a file"],
  ])("%p: one line naming the flag and the variable", (path, problem) => {
    const warning = cloudflaredProblem(path);
    expect(warning).toContain(`"${path}" ${problem}`);
    expect(warning).toContain("--cloudflared-path");
    expect(warning).toContain("CLOUDFLARED_PATH");
    expect(warning).not.toContain("\n");
  });
});

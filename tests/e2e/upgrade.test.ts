import { expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FAKE_CLOUDFLARED, ROOT, freePort, portRange, proxyCommand, readLogLines, startProxy, type LogLine } from "../helpers/proxy-process.ts";
import { echoConnection } from "../helpers/swarm.ts";
import { eventually, isAlive } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";

const MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req";

/** The shell block the README's upgrade section says this test runs. */
function readmeProcedure(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const marker = readme.indexOf("<!-- upgrade-procedure");
  const start = readme.indexOf("```sh\n", marker) + "```sh\n".length;
  const block = readme.slice(start, readme.indexOf("```", start));
  if (marker < 0 || !block.includes("kill -TERM")) throw new Error("the README's upgrade procedure was not found");
  return block;
}

/** A directory holding `tcp-tunnel-proxy` (the binary under test, or a wrapper running the source), for PATH. */
function binDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ttp-path-"));
  const target = join(dir, "tcp-tunnel-proxy");
  if (process.env.TTP_BINARY) symlinkSync(process.env.TTP_BINARY, target);
  else {
    writeFileSync(target, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} run ${JSON.stringify(join(ROOT, "src/main.ts"))} "$@"\n`);
    chmodSync(target, 0o755);
  }
  return dir;
}

/** Runs the procedure with what it expects in its environment: the binary on PATH, OLD_PID, NEW_ADMIN, the configuration. */
function runProcedure(script: string, oldPid: number, newAdmin: number, port: number, env: Record<string, string>) {
  return Bun.spawn(["bash", "-ec", script], {
    stdout: "pipe",
    stderr: "pipe",
    env: {
      ...process.env,
      PATH: `${binDir()}:${process.env.PATH}`,
      OLD_PID: String(oldPid),
      NEW_ADMIN: `127.0.0.1:${newAdmin}`,
      LISTEN_ADDR: `127.0.0.1:${port}`,
      REUSE_PORT: "true",
      CLOUDFLARED_PATH: FAKE_CLOUDFLARED,
      ...env,
    },
  });
}

/** Sets net.ipv4.tcp_migrate_req=1 where this machine allows it; returns how to restore it, or null. */
function enableMigration(): (() => void) | null {
  try {
    const before = readFileSync(MIGRATE, "utf8").trim();
    writeFileSync(MIGRATE, "1");
    return () => writeFileSync(MIGRATE, before);
  } catch {
    return null;
  }
}

/** The first line of a stream that may stay open (the backgrounded new process inherits it). */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream) {
    text += new TextDecoder().decode(chunk);
    if (text.includes("\n")) break;
  }
  return text.split("\n")[0] as string;
}

test("the README's upgrade procedure, followed as written, refuses no connection", async () => {
  const restore = enableMigration();
  const port = freePort();
  const [oldAdmin, newAdmin] = [freePort(), freePort()];
  const range = portRange(20);
  const [rangeStart, rangeEnd] = range.split("-");
  let newPid: number | null = null;
  try {
    const old = await startProxy(["--listen", `127.0.0.1:${port}`, "--reuse-port", "--port-range", range,
      "--metrics-listen", `127.0.0.1:${oldAdmin}`, "--log-level", "info"]);
    const sni = `up-${Math.random().toString(36).slice(2, 8)}.upgrade.test`;
    expect((await echoConnection(port, sni, 100, 0)).ok).toBe(true);

    let running = true;
    let done = 0;
    const failures: string[] = [];
    const client = async (k: number) => {
      for (let i = 0; running; i++) {
        const result = await echoConnection(port, sni, 512, k * 100_000 + i);
        done++;
        if (!result.ok) failures.push(result.reason ?? "failed");
      }
    };
    const clients = Array.from({ length: 8 }, (_, k) => client(k));
    await within(10_000, eventually(() => done, (n) => n >= 200), "200 connections through the old process");

    const newLines: LogLine[] = [];
    const shell = runProcedure(`${readmeProcedure()}\necho "$!"`, old.proc.pid, newAdmin, port, {
      PORT_RANGE_START: rangeStart as string,
      PORT_RANGE_END: rangeEnd as string,
      LOG_FORMAT: "json",
      LOG_LEVEL: "info",
    });
    void readLogLines(shell.stderr, (line) => newLines.push(line));
    expect(await within(40_000, shell.exited, "the procedure's three steps")).toBe(0);
    newPid = Number(await firstLine(shell.stdout));
    const doneAtSigterm = done;

    expect(await within(10_000, old.proc.exited, "the old process's exit after its drain")).toBe(0);
    await within(10_000, eventually(() => done, (n) => n >= doneAtSigterm + 300), "300 more connections after the SIGTERM");
    running = false;
    await Promise.all(clients);

    if (restore !== null) expect(failures).toEqual([]);
    else expect(failures.every((reason) => /reset|ECONNRESET|received 0/.test(reason))).toBe(true);
    const newServed = newLines.filter((l) => l.msg === "connection" && l.outcome === "proxied").length;
    expect(newServed).toBeGreaterThan(0);
    const tunnelPort = (lines: LogLine[]) => lines.find((l) => l.msg === "tunnel starting" && l.tunnel === `cft-${sni}`)?.port;
    expect(tunnelPort(old.lines)).toBeDefined();
    expect(tunnelPort(newLines)).toBeDefined();
    expect(tunnelPort(newLines)).not.toBe(tunnelPort(old.lines));
    expect((await echoConnection(port, sni, 100, 1)).ok).toBe(true);
    const stopping = newPid;
    newPid = null;
    process.kill(stopping, "SIGTERM");
    await within(5000, eventually(() => isAlive(stopping), (running) => !running, 5000), "the new process's exit on SIGTERM");
    expect(newLines.at(-1)?.msg).toBe("stopped");
    // A good run says nothing of its own: every line on stderr is the new proxy's log.
    expect(newLines.filter((l) => l.level === "raw")).toEqual([]);
  } finally {
    if (newPid !== null && newPid > 0) process.kill(newPid, "SIGTERM");
    restore?.();
  }
}, 60_000);

test("with --reuse-port two processes share the client and the admin address; without it the second exits 1", async () => {
  const [port, admin] = [freePort(), freePort()];
  const args = ["--listen", `127.0.0.1:${port}`, "--metrics-listen", `127.0.0.1:${admin}`];
  const first = await startProxy([...args, "--reuse-port"]);
  const second = await startProxy([...args, "--reuse-port"]);
  expect([first.adminPort, second.adminPort]).toEqual([admin, admin]);
  expect([first.port, second.port]).toEqual([port, port]);
  expect((await fetch(`http://127.0.0.1:${admin}/healthz`)).status).toBe(200);
  const plain = Bun.spawn([...proxyCommand(), ...args, "--port-range", portRange(), "--cloudflared-path", FAKE_CLOUDFLARED], { stderr: "pipe" });
  expect(await within(10_000, plain.exited, "the exit of a process without --reuse-port")).toBe(1);
  expect(await new Response(plain.stderr).text()).toContain("cannot listen");
  expect(await first.stop()).toBe(0);
  expect(await second.stop()).toBe(0);
});

test("the README's upgrade procedure fails loudly, with the old process left serving, when the new one cannot start", async () => {
  const port = freePort();
  const old = await startProxy(["--listen", `127.0.0.1:${port}`, "--reuse-port", "--metrics-listen", "127.0.0.1:0"]);
  const shell = runProcedure(readmeProcedure(), old.proc.pid, freePort(), port, { IDLE_TIMEOUT: "banana" });
  expect(await within(15_000, shell.exited, "the procedure's exit")).toBe(1);
  const stderr = await new Response(shell.stderr).text();
  expect(stderr).toContain('invalid IDLE_TIMEOUT "banana"');
  expect(stderr).toContain("upgrade aborted: the new process exited; the old one serves on");
  expect(stderr).not.toContain("curl:");
  expect(isAlive(old.proc.pid)).toBe(true);
  expect((await echoConnection(port, `still-${Math.random().toString(36).slice(2, 8)}.upgrade.test`, 100, 1)).ok).toBe(true);
  expect(await old.stop()).toBe(0);
}, 30_000);

// Our stand-in follows the real one: every behaviour tests/fake-cloudflared.ts models, run against both binaries
// with the same arguments, compared on what the proxy relies on (lines, streams, exit status, the bind, resets).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../helpers/proxy-process.ts";
import { rawConnect } from "../helpers/clients.ts";
import { within } from "../helpers/deadline.ts";
import { eventually } from "../helpers/admin.ts";
import { fate, listenersOn, listening, runCloudflared, straceMissing, straceOrder, type CloudflaredRun, type Which } from "./cloudflared-run.ts";
import { onFreshAddress, realChain, realSkipped, realUnavailable, type RealChain } from "./harness.ts";

if (realUnavailable === null && straceMissing !== null) console.warn(`SKIPPED the startup line's order against the bind: ${straceMissing}`);

const BOTH: Which[] = ["real", "fake"];
const STAMPED = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INF|ERR) /;
const errLines = (run: CloudflaredRun) => run.lines.filter((l) => l.stream === "err").map((l) => l.text);
const startup = (port: number) => new RegExp(`^\\S+ INF Start Websocket listener host=127\\.0\\.0\\.1:${port}$`);

describe.skipIf(realSkipped())("the fake cloudflared behaves as the real one", () => {
  let chain: RealChain;
  let dir: string;
  beforeAll(() => {
    chain = realChain();
    dir = mkdtempSync(join(tmpdir(), "ttp-real-compare-"));
  });
  afterAll(() => {
    chain?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("usage errors: the usage on stdout, status 0, nothing on stderr; no hostname means no error line", async () => {
    for (const [args, first] of [[["--bogus", "--hostname", "x.demo.test"], "Incorrect Usage: flag provided but not defined: -bogus"], [["--url", "127.0.0.1:1"], "NAME:"]] as const) {
      for (const which of BOTH) {
        const run = runCloudflared(which, ["access", "tcp", ...args], chain);
        expect({ which, ended: await run.ended() }).toEqual({ which, ended: { code: 0, signal: null } });
        const out = run.lines.filter((l) => l.stream === "out").map((l) => l.text);
        expect({ which, first: out[0], usage: out.includes("USAGE:"), err: errLines(run) }).toEqual({ which, first, usage: true, err: [] });
      }
    }
  });

  test("--url refusals: before the startup line or after it, with the same marker, status 1", async () => {
    const shape = (run: CloudflaredRun) => {
      const err = errLines(run);
      return {
        startup: err.some((l) => l.includes("INF Start Websocket listener")),
        validating: err.some((l) => STAMPED.test(l) && l.includes("ERR Error validating origin URL error=")),
        listener: err.some((l) => STAMPED.test(l) && l.includes("ERR Error on Websocket listener error=\"failed to start forwarding server: ")),
      };
    };
    const cases = [
      ["127.0.0.1:abc", { startup: false, validating: true, listener: false }],
      ["tcp://127.0.0.1:12x", { startup: false, validating: true, listener: false }],
      ["ftp://127.0.0.1:21", { startup: false, validating: true, listener: false }],
      ["notaurl", { startup: true, validating: false, listener: true }],
      ["127.0.0.1:99999", { startup: true, validating: false, listener: true }],
    ] as const;
    for (const [url, expected] of cases) {
      for (const which of BOTH) {
        const run = runCloudflared(which, ["access", "tcp", "--hostname", "x.demo.test", "--url", url], chain);
        const ended = await run.ended();
        expect({ which, url, ended, shape: shape(run) }).toEqual({ which, url, ended: { code: 1, signal: null }, shape: expected });
      }
    }
  });

  test("the startup line, then the bind of exactly 127.0.0.1:PORT; a taken port is `address already in use`, status 1", async () => {
    for (const which of BOTH) {
      const port = freePort();
      const straceTo = straceMissing === null ? join(dir, `${which}.strace`) : undefined;
      const run = runCloudflared(which, ["access", "tcp", "--hostname", "x.demo.test", "--url", `127.0.0.1:${port}`], chain, straceTo ? { straceTo } : {});
      const line = await run.line((t) => startup(port).test(t));
      expect({ which, listeners: await eventually(() => listenersOn(port), (l) => l.length > 0) }).toEqual({ which, listeners: ["0100007F"] });
      if (straceTo !== undefined) {
        const { writeAt, listenAt } = straceOrder(straceTo);
        console.log(`${which} cloudflared: startup line ${(line.at - run.startedAt).toFixed(0)} ms after spawn; listen() ${((listenAt - writeAt) * 1000).toFixed(1)} ms after writing it (under strace)`);
        expect({ which, lineFirst: writeAt <= listenAt }).toEqual({ which, lineFirst: true });
      }
      run.signal("SIGKILL");
      await run.ended();

      const holder = Bun.listen({ hostname: "127.0.0.1", port: freePort(), socket: { data() {} } });
      const taken = runCloudflared(which, ["access", "tcp", "--hostname", "x.demo.test", "--url", `127.0.0.1:${holder.port}`], chain);
      expect({ which, ended: await taken.ended() }).toEqual({ which, ended: { code: 1, signal: null } });
      holder.stop(true);
      const err = errLines(taken);
      expect({ which, startup: startup(holder.port).test(err[0] ?? ""), inUse: err.some((l) => STAMPED.test(l) && l.includes("bind: address already in use")) })
        .toEqual({ which, startup: true, inUse: true });
    }
  });

  /** Ends `run` with SIGTERM and says how it went: its status, the time it took, and whether it said anything. */
  async function terminate(run: CloudflaredRun): Promise<{ ended: Awaited<ReturnType<CloudflaredRun["ended"]>>; silent: boolean; ms: number }> {
    const said = run.lines.length;
    const sent = performance.now();
    run.signal("SIGTERM");
    const ended = await run.ended();
    return { ended, silent: run.lines.length === said, ms: performance.now() - sent };
  }

  test("an origin it cannot reach: one `failed to connect to origin` line naming it, the connection reset, still running", async () => {
    // The real one's dial reaches a listener that resets it once this test's bytes wait unread in cloudflared (it
    // resets only such a connection; without them it closes); the fake's dial is refused.
    const dials: { terminate(): void }[] = [];
    const origin = onFreshAddress((address) => Bun.listen({ hostname: address, port: 443, socket: { open: (s) => void dials.push(s), data() {} } }));
    chain.map("cft-nowhere.demo.test", origin.hostname);
    const line = /^\S+Z ERR failed to connect to origin error=".+" originURL=https:\/\/cft-nowhere\.demo\.test$/;
    for (const which of BOTH) {
      const { run, port } = await listening(which, "cft-nowhere.demo.test", chain, { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${freePort()}` });
      const { written, ended } = fate(port);
      await written;
      if (which === "real") (await eventually(() => dials.shift(), (dial) => dial !== undefined))?.terminate();
      expect({ which, ended: await within(10_000, ended, `${which}: the connection's end`) }).toEqual({ which, ended: "reset" });
      expect({ which, said: (await run.line((t) => t.includes("failed to connect to origin"))).text }).toEqual({ which, said: expect.stringMatching(line) });
      expect({ which, term: (await terminate(run)).ended }).toEqual({ which, term: { code: null, signal: "SIGTERM" } });
    }
    origin.stop(true);
  });

  test("SIGTERM, idle or mid-session: death by the signal, silently", async () => {
    const echo = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (socket, chunk) => void socket.write(chunk) } });
    chain.serve("cft-term.demo.test", { kind: "bridge", port: echo.port });
    for (const which of BOTH) {
      const idle = await listening(which, "cft-term.demo.test", chain);
      const quiet = await terminate(idle.run);
      const busy = await listening(which, "cft-term.demo.test", chain);
      const socket = await rawConnect(busy.port);
      const echoed = new Promise<string>((resolve) => socket.once("data", (chunk) => resolve(chunk.toString())));
      socket.on("error", () => undefined);
      socket.write("ping");
      expect(await within(10_000, echoed, `${which}: the echo through the session`)).toBe("ping");
      const mid = await terminate(busy.run);
      socket.destroy();
      console.log(`${which} cloudflared: SIGTERM to exit ${quiet.ms.toFixed(0)} ms idle, ${mid.ms.toFixed(0)} ms mid-session`);
      for (const result of [quiet, mid]) expect({ which, ...result, ms: 0 }).toEqual({ which, ended: { code: null, signal: "SIGTERM" }, silent: true, ms: 0 });
    }
    echo.stop(true);
  });

  test("the login prompt without a route to Cloudflare: the prompt's lines, then the origin failure and a reset", async () => {
    for (const which of BOTH) {
      // Access answers once this test's bytes wait unread in cloudflared, so the real one's close is a reset.
      let release!: () => void;
      chain.serve("cft-login.demo.test", { kind: "login", until: new Promise<void>((resolve) => (release = resolve)) });
      const { run, port } = await listening(which, "cft-login.demo.test", chain, { FAKE_CF_LOGIN: "offline" });
      const { written, ended } = fate(port);
      await written;
      release();
      expect({ which, ended: await within(15_000, ended, `${which}: the connection's end`) }).toEqual({ which, ended: "reset" });
      await run.line((t) => t.includes("failed to connect to origin"));
      const err = errLines(run);
      const at = err.indexOf("A browser window should have opened at the following URL:");
      expect({ which, found: at >= 0, blank: err[at + 1], url: err[at + 2], after: err[at + 3] }).toEqual({
        which, found: true, blank: "", url: expect.stringMatching(/^https:\/\/cft-login\.demo\.test\/cdn-cgi\/access\/cli\?\S*aud=/), after: "",
      });
      const failure = err.find((l) => l.includes("failed to connect to origin")) ?? "";
      expect({ which, failure }).toEqual({ which, failure: expect.stringMatching(/^\S+Z ERR failed to connect to origin error="failed to run transfer service: .*" originURL=https:\/\/cft-login\.demo\.test$/) });
      expect({ which, term: (await terminate(run)).ended }).toEqual({ which, term: { code: null, signal: "SIGTERM" } });
    }
  });

  test("waiting for the login (Cloudflare's login service reachable but silent): SIGTERM exits 0, silently", async () => {
    const silent = onFreshAddress((address) => Bun.listen({ hostname: address, port: 443, socket: { data() {} } }));
    chain.map("login.cloudflareaccess.org", silent.hostname);
    chain.serve("cft-wait.demo.test", { kind: "login" });
    for (const which of BOTH) {
      const { run, port } = await listening(which, "cft-wait.demo.test", chain, { FAKE_CF_LOGIN: "on-connect" });
      const { socket } = fate(port);
      await run.line((t) => t.startsWith("https://cft-wait.demo.test/cdn-cgi/access/cli?"));
      const result = await terminate(run);
      socket.destroy();
      expect({ which, ended: result.ended, silent: result.silent }).toEqual({ which, ended: { code: 0, signal: null }, silent: true });
    }
    silent.stop(true);
  });
});

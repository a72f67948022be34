#!/usr/bin/env bun
// A stand-in for `cloudflared access tcp` that serves every accepted connection locally (each would be a real
// upstream connection). It follows Cloudflare's cloudflared 2023.5.0 in all it models, checked by running both
// (tests/real/fake-matches-real.test.ts); where it differed it was changed to match:
//   usage errors: the usage on stdout, status 0, `Incorrect Usage: flag provided but not defined: -<flag>` first for
//     an unknown flag, the usage alone without --hostname (it printed one line for both)
//   --url: a bad scheme or a port that is not a number is `Error validating origin URL` before the startup line; a
//     missing or too large port fails after it with `Error on Websocket listener` (it refused all as the former)
//   log lines stamped to the second, UTC (it stamped milliseconds); errors it ends with are repeated bare
//   a taken port: `Error on Websocket listener error="failed to start forwarding server: listen tcp …: bind: address
//     already in use"`, status 1 (it wrote a shorter line)
//   an origin it cannot reach: `failed to connect to origin error="…" originURL=https://<hostname>` and the local
//     connection reset (it closed it, and named no originURL)
//   the login prompt: bare lines in one write, `A browser window should have opened at the following URL:`, a blank,
//     the /cdn-cgi/access/cli URL (it wrote stamped lines); waiting for the login, SIGTERM exits 0 (the real one then
//     releases a token lock); FAKE_CF_LOGIN=offline added for what the real one does without a route to Cloudflare
// Alike already: the startup line written just before the bind of exactly that address, and death by SIGTERM at once,
// silently, idle or mid-session (measured a few milliseconds; the note that came with the binary said about 2.5 s,
// which no run reproduced). Not modelled: without --url the real one carries stdin/stdout instead of listening.
// Knobs (environment):
//   FAKE_CF_MODE          echo (default) | forward | postgres | sink (counts, answers the count at the client's FIN)
//   FAKE_CF_MODE_MAP      JSON {hostname: mode}, overriding FAKE_CF_MODE per tunnel hostname
//   FAKE_CF_FORWARD       host:port to forward to (forward/postgres modes), or FAKE_CF_FORWARD_MAP JSON {hostname: "host:port"}
//   FAKE_CF_START_DELAY_MS  wait this long after the startup line before binding (slow start)
//   FAKE_CF_FAIL          exit (status 1 at once) | usage (Incorrect Usage, status 0) | origin (Error validating origin URL)
//   FAKE_CF_CRASH_AFTER_MS  exit with status 1 this long after binding
//   FAKE_CF_CRASH_ONCE_FILE with CRASH_AFTER: crash only if this file does not exist yet (and create it)
//   FAKE_CF_LOGIN         on-connect: on a connection, print the Access login prompt and wait for the login, as the
//                         real one does when it can reach Cloudflare | offline: print the prompt, then fail to reach
//                         Cloudflare's login service and reset the connection, as the real one does without a route
//   FAKE_CF_HANG          1: print the startup line and never bind (a start that only the startup timeout ends)
//   FAKE_CF_IGNORE_TERM   1: ignore SIGTERM, so only SIGKILL ends it (the escalation path)
//   FAKE_CF_TERM_DELAY_MS die by SIGTERM this long after receiving it, silently (default 0, at once like the real
//                         one; tests/real/lifecycle.test.ts runs the proxy's shutdown against a 2.5 s delay)
//   FAKE_CF_DESCENDANT    1: start a long-lived descendant (`sleep 3600`) that inherits stdout/stderr, as a browser
//                         launcher or a wrapper script would; its pid goes to <FAKE_CF_STATE_DIR>/<hostname>.descendant
//   FAKE_CF_BY_NAME       1: the tunnel hostname's first label, minus a leading `cft-`, picks the behaviour: `crash…`
//                         exits 1 FAKE_CF_CRASH_AFTER_MS (default 300) after binding, `fail…` exits 1 at once, `slow…`
//                         binds after FAKE_CF_START_DELAY_MS (default 300), `login…` prompts for login on a connection,
//                         `hang…` never binds, `usage…` prints Incorrect Usage and exits 0; any other name behaves by
//                         default. FAKE_CF_FAIL, FAKE_CF_LOGIN and FAKE_CF_HANG are then ignored.
//   FAKE_CF_PG_REPLY      postgres mode: the byte answered to an SSLRequest (default S)
//   FAKE_CF_PRINT_REQUEST 1: on each connection print the request it would send, Access headers included, as the real
//                         one does with --loglevel debug
//   FAKE_CF_STATE_DIR     append one line per accepted connection to <dir>/<hostname>.conns and the pid to <hostname>.pids;
//                         <hostname>.bound gets the epoch milliseconds of the bind; a connection whose first 16 bytes
//                         (after an optional PROXY v1/v2 header) are a PostgreSQL CancelRequest appends
//                         `<pid> <secret> <header>` (signed 32-bit, as node-postgres reports them; the hex of the PROXY header before
//                         it, or -) to <hostname>.cancels
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import { bare, checkUrl, listenerFailed, log, parseCommand, refuseUrl, usageText, watchForCancel } from "./fake-cloudflared-lib.ts";

const env = process.env;
const command = parseCommand(process.argv.slice(2));
const hostname = command.kind === "run" ? command.hostname : "";

const BEHAVIOURS = ["crash", "fail", "slow", "login", "hang", "usage"] as const;
const label = (hostname.split(".")[0] ?? "").replace(/^cft-/, "");
const named = env.FAKE_CF_BY_NAME === "1" ? (BEHAVIOURS.find((b) => label.startsWith(b)) ?? "default") : null;
const failMode = named === null ? env.FAKE_CF_FAIL : named === "fail" ? "exit" : named === "usage" ? "usage" : undefined;
const login = named === null ? env.FAKE_CF_LOGIN : named === "login" ? "on-connect" : undefined;
const hang = named === null ? env.FAKE_CF_HANG === "1" : named === "hang";
const crashAfter = named === null ? Number(env.FAKE_CF_CRASH_AFTER_MS ?? 0) : named === "crash" ? Number(env.FAKE_CF_CRASH_AFTER_MS ?? 300) : 0;
const startDelay = named === null ? Number(env.FAKE_CF_START_DELAY_MS ?? 0) : named === "slow" ? Number(env.FAKE_CF_START_DELAY_MS ?? 300) : 0;

if (command.kind === "usage" || failMode === "usage") {
  process.stdout.write(usageText(command.kind === "usage" ? command.error : "flag provided but not defined: -fake-usage"));
  process.exit(0);
}
const url = command.url;
const checked = failMode === "origin" ? ({ kind: "invalid", why: "FAKE_CF_FAIL=origin" } as const) : checkUrl(url);
if (checked.kind === "invalid") refuseUrl(checked.why);
if (failMode === "exit") {
  log("ERR", "failed to start");
  process.exit(1);
}
const stateDir = env.FAKE_CF_STATE_DIR;
if (stateDir) appendFileSync(`${stateDir}/${hostname}.pids`, `${process.pid}\n`);
/** Set while a login prompt waits: the real one then holds a token lock, which it releases on SIGTERM to exit 0. */
let awaitingLogin = false;
const termDelay = Number(env.FAKE_CF_TERM_DELAY_MS ?? 0);
if (env.FAKE_CF_IGNORE_TERM === "1") process.on("SIGTERM", () => log("INF", "ignoring SIGTERM"));
else if (termDelay > 0 || login === "on-connect") {
  process.on("SIGTERM", () => {
    if (awaitingLogin) process.exit(0);
    setTimeout(() => {
      process.removeAllListeners("SIGTERM");
      process.kill(process.pid, "SIGTERM");
    }, termDelay);
  });
}
if (env.FAKE_CF_DESCENDANT === "1") {
  const descendant = spawn("sleep", ["3600"], { stdio: ["ignore", "inherit", "inherit"] });
  descendant.unref();
  if (stateDir) writeFileSync(`${stateDir}/${hostname}.descendant`, `${descendant.pid}\n`);
}

function target(): { host: string; port: number } | null {
  const map = env.FAKE_CF_FORWARD_MAP ? (JSON.parse(env.FAKE_CF_FORWARD_MAP) as Record<string, string>) : {};
  const address = map[hostname] ?? env.FAKE_CF_FORWARD;
  if (!address) return null;
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

function forward(client: Socket, first?: Buffer): void {
  const to = target();
  if (to === null) return void client.destroy();
  const upstream = connect(to.port, to.host);
  if (first !== undefined && first.length > 0) upstream.write(first);
  client.pipe(upstream);
  upstream.pipe(client);
  const destroy = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", destroy);
  let connected = false;
  upstream.once("connect", () => (connected = true));
  upstream.on("error", (error: NodeJS.ErrnoException) => {
    if (connected) return destroy();
    originFailed(client, `dial tcp ${to.host}:${to.port}: connect: ${error.code === "ECONNREFUSED" ? "connection refused" : error.message}`);
    upstream.destroy();
  });
}

/** The real one's answer to a connection it cannot carry: one error line, and the local connection reset. */
function originFailed(client: Socket, why: string): void {
  log("ERR", `failed to connect to origin error="${why}" originURL=https://${hostname}`);
  client.resetAndDestroy();
}

/** Access asks for a login: the prompt as the real one writes it (bare lines, one write), with the URL to open. */
function promptLogin(client: Socket): void {
  const url = `https://${hostname}/cdn-cgi/access/cli?aud=fake&edge_token_transfer=true&redirect_url=https%3A%2F%2F${hostname}&send_org_token=true&token=fake`;
  bare(`A browser window should have opened at the following URL:\n\n${url}\n\n(a browser login would follow; this stand-in opens none)`);
  if (login === "offline") return originFailed(client, "failed to run transfer service: dial tcp: lookup login.cloudflareaccess.org: no such host");
  awaitingLogin = true;
}

function servePostgres(client: Socket): void {
  client.once("data", (chunk: Buffer) => {
    client.pause();
    const isSslRequest = chunk.length >= 8 && chunk.readUInt32BE(4) === 80877103;
    if (!isSslRequest) return void client.destroy();
    client.write(env.FAKE_CF_PG_REPLY ?? "S");
    const rest = chunk.subarray(8);
    if (target() !== null) return forward(client, rest);
    if (rest.length > 0) client.write(rest);
    client.pipe(client);
    client.resume();
  });
}

const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (client) => {
  if (stateDir) appendFileSync(`${stateDir}/${hostname}.conns`, "conn\n");
  if (env.FAKE_CF_PRINT_REQUEST === "1") {
    bare(`GET / HTTP/1.1\nHost: ${hostname}\nCf-Access-Client-Id: ${env.TUNNEL_SERVICE_TOKEN_ID ?? ""}\nCf-Access-Client-Secret: ${env.TUNNEL_SERVICE_TOKEN_SECRET ?? ""}`);
  }
  if (login === "on-connect" || login === "offline") return promptLogin(client);
  client.on("error", () => client.destroy());
  if (stateDir) watchForCancel(client, `${stateDir}/${hostname}.cancels`);
  const modes = env.FAKE_CF_MODE_MAP ? (JSON.parse(env.FAKE_CF_MODE_MAP) as Record<string, string>) : {};
  switch (modes[hostname] ?? env.FAKE_CF_MODE ?? "echo") {
    case "forward":
      return forward(client);
    case "postgres":
      return servePostgres(client);
    case "sink": {
      let count = 0;
      client.on("data", (chunk: Buffer) => (count += chunk.length));
      client.on("end", () => client.end(`${count}\n`));
      return;
    }
    default:
      client.pipe(client);
  }
});

log("INF", `Start Websocket listener host=${checked.address}`);
if (checked.kind === "unlistenable") listenerFailed(checked.why);
const { host, port } = checked;
const bind = () =>
  server.listen({ host, port, exclusive: true }, () => {
    if (stateDir) writeFileSync(`${stateDir}/${hostname}.bound`, `${Date.now()}\n`);
    const onceFile = env.FAKE_CF_CRASH_ONCE_FILE;
    if (crashAfter > 0 && !(onceFile && existsSync(onceFile))) {
      if (onceFile) writeFileSync(onceFile, `${process.pid}\n`);
      setTimeout(() => process.exit(1), crashAfter);
    }
  });
server.on("error", (error: NodeJS.ErrnoException) =>
  listenerFailed(`listen tcp ${host}:${port}: bind: ${error.code === "EADDRINUSE" ? "address already in use" : error.message}`),
);
// A hung cloudflared: alive, never listening. The interval only keeps the event loop (and so the process) running.
if (hang) setInterval(() => undefined, 60_000);
else if (startDelay > 0) setTimeout(bind, startDelay);
else bind();

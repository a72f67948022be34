#!/usr/bin/env bun
// A stand-in for `cloudflared access tcp` (DESIGN §2): same argv, startup line before the bind, dies on SIGTERM,
// serves every accepted connection locally (each would be a real upstream connection). Knobs (environment):
//   FAKE_CF_MODE          echo (default) | forward | postgres | sink (counts, answers the count at the client's FIN)
//   FAKE_CF_MODE_MAP      JSON {hostname: mode}, overriding FAKE_CF_MODE per tunnel hostname
//   FAKE_CF_FORWARD       host:port to forward to (forward/postgres modes), or FAKE_CF_FORWARD_MAP JSON {hostname: "host:port"}
//   FAKE_CF_START_DELAY_MS  wait this long after the startup line before binding (slow start)
//   FAKE_CF_FAIL          exit (status 1 at once) | usage (Incorrect Usage, status 0) | origin (Error validating origin URL)
//   FAKE_CF_CRASH_AFTER_MS  exit with status 1 this long after binding
//   FAKE_CF_CRASH_ONCE_FILE with CRASH_AFTER: crash only if this file does not exist yet (and create it)
//   FAKE_CF_LOGIN         on-connect: print the Access login prompt when a connection arrives (as the real one does)
//   FAKE_CF_HANG          1: print the startup line and never bind (a start that only the startup timeout ends)
//   FAKE_CF_IGNORE_TERM   1: ignore SIGTERM, so only SIGKILL ends it (the escalation path)
//   FAKE_CF_DESCENDANT    1: start a long-lived descendant (`sleep 3600`) that inherits stdout/stderr, as a browser
//                         launcher or a wrapper script would; its pid goes to <FAKE_CF_STATE_DIR>/<hostname>.descendant
//   FAKE_CF_BY_NAME       1: the tunnel hostname's first label, minus a leading `cft-`, picks the behaviour: `crash…`
//                         exits 1 FAKE_CF_CRASH_AFTER_MS (default 300) after binding, `fail…` exits 1 at once, `slow…`
//                         binds after FAKE_CF_START_DELAY_MS (default 300), `login…` prompts for login on a connection,
//                         `hang…` never binds, `usage…` prints Incorrect Usage and exits 0; any other name behaves by
//                         default. FAKE_CF_FAIL, FAKE_CF_LOGIN and FAKE_CF_HANG are then ignored.
//   FAKE_CF_PG_REPLY      postgres mode: the byte answered to an SSLRequest (default S)
//   FAKE_CF_STATE_DIR     append one line per accepted connection to <dir>/<hostname>.conns and the pid to <hostname>.pids;
//                         <hostname>.bound gets the epoch milliseconds of the bind; a connection whose first 16 bytes
//                         (after an optional PROXY v1/v2 header) are a PostgreSQL CancelRequest appends
//                         `<pid> <secret>` (signed 32-bit, as node-postgres reports them) to <hostname>.cancels
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: { hostname: { type: "string" }, url: { type: "string" }, loglevel: { type: "string" } },
  allowPositionals: true,
  strict: false,
});
const env = process.env;
const hostname = String(values.hostname ?? "");
const url = String(values.url ?? "");
const log = (level: string, text: string) => process.stderr.write(`${new Date().toISOString()} ${level} ${text}\n`);

const BEHAVIOURS = ["crash", "fail", "slow", "login", "hang", "usage"] as const;
const label = (hostname.split(".")[0] ?? "").replace(/^cft-/, "");
const named = env.FAKE_CF_BY_NAME === "1" ? (BEHAVIOURS.find((b) => label.startsWith(b)) ?? "default") : null;
const failMode = named === null ? env.FAKE_CF_FAIL : named === "fail" ? "exit" : named === "usage" ? "usage" : undefined;
const login = named === null ? env.FAKE_CF_LOGIN === "on-connect" : named === "login";
const hang = named === null ? env.FAKE_CF_HANG === "1" : named === "hang";
const crashAfter = named === null ? Number(env.FAKE_CF_CRASH_AFTER_MS ?? 0) : named === "crash" ? Number(env.FAKE_CF_CRASH_AFTER_MS ?? 300) : 0;
const startDelay = named === null ? Number(env.FAKE_CF_START_DELAY_MS ?? 0) : named === "slow" ? Number(env.FAKE_CF_START_DELAY_MS ?? 300) : 0;

if (positionals[0] !== "access" || positionals[1] !== "tcp" || hostname === "" || failMode === "usage") {
  process.stdout.write("Incorrect Usage: flag provided but not defined\n");
  process.exit(0);
}
const match = /^(?:tcp:\/\/)?([\d.]+):(\d+)$/.exec(url);
if (match === null || failMode === "origin") {
  log("ERR", `Error validating origin URL: ${url}`);
  process.exit(1);
}
if (failMode === "exit") {
  log("ERR", "failed to start");
  process.exit(1);
}
const stateDir = env.FAKE_CF_STATE_DIR;
if (stateDir) appendFileSync(`${stateDir}/${hostname}.pids`, `${process.pid}\n`);
if (env.FAKE_CF_IGNORE_TERM === "1") process.on("SIGTERM", () => log("INF", "ignoring SIGTERM"));
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
  upstream.on("error", () => {
    log("ERR", `failed to connect to origin error="${to.host}:${to.port}"`);
    destroy();
  });
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

const CANCEL_REQUEST_CODE = 80877102;
const PROXY_V1_MAX = 107;

/** A CancelRequest's key at the start of `bytes` (after a PROXY header), null when it is not one, "more" to wait. */
function cancelKey(bytes: Buffer): { pid: number; secret: number } | null | "more" {
  let at = 0;
  if (bytes[0] === 0x50) {
    const end = bytes.indexOf("\r\n");
    if (end < 0) return bytes.length < PROXY_V1_MAX ? "more" : null;
    at = end + 2;
  } else if (bytes[0] === 0x0d) {
    if (bytes.length < 16) return "more";
    at = 16 + bytes.readUInt16BE(14);
  }
  if (bytes.length < at + 8) return "more";
  if (bytes.readUInt32BE(at) !== 16 || bytes.readUInt32BE(at + 4) !== CANCEL_REQUEST_CODE) return null;
  if (bytes.length < at + 16) return "more";
  return { pid: bytes.readInt32BE(at + 8), secret: bytes.readInt32BE(at + 12) };
}

/** Records a cancel's key without taking part in serving the connection. */
function watchForCancel(client: Socket, dir: string): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const key = cancelKey(seen);
    if (key === "more") return;
    client.off("data", onData);
    if (key !== null) appendFileSync(`${dir}/${hostname}.cancels`, `${key.pid} ${key.secret}\n`);
  };
  client.on("data", onData);
}

const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (client) => {
  if (stateDir) appendFileSync(`${stateDir}/${hostname}.conns`, "conn\n");
  if (login) {
    log("INF", "Please open the following URL and log in with your Cloudflare account:");
    log("INF", `https://${hostname}/cdn-cgi/access/cli?redirect_url=...`);
    return;
  }
  client.on("error", () => client.destroy());
  if (stateDir) watchForCancel(client, stateDir);
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

log("INF", `Start Websocket listener host=${match[1]}:${match[2]}`);
const bind = () =>
  server.listen({ host: match[1], port: Number(match[2]), exclusive: true }, () => {
    if (stateDir) writeFileSync(`${stateDir}/${hostname}.bound`, `${Date.now()}\n`);
    const onceFile = env.FAKE_CF_CRASH_ONCE_FILE;
    if (crashAfter > 0 && !(onceFile && existsSync(onceFile))) {
      if (onceFile) writeFileSync(onceFile, `${process.pid}\n`);
      setTimeout(() => process.exit(1), crashAfter);
    }
  });
server.on("error", (error: NodeJS.ErrnoException) => {
  log("ERR", `listen tcp ${url}: bind: ${error.code === "EADDRINUSE" ? "address already in use" : error.message}`);
  process.exit(1);
});
// A hung cloudflared: alive, never listening. The interval only keeps the event loop (and so the process) running.
if (hang) setInterval(() => undefined, 60_000);
else if (startDelay > 0) setTimeout(bind, startDelay);
else bind();

#!/usr/bin/env bun
// A stand-in for `cloudflared access tcp` (DESIGN §2): same argv, startup line before the bind, dies on SIGTERM,
// serves every accepted connection locally. Knobs (environment):
//   FAKE_CF_MODE          echo (default) | forward | postgres | sink (counts, answers the count at the client's FIN)
//   FAKE_CF_MODE_MAP      JSON {hostname: mode}, overriding FAKE_CF_MODE per tunnel hostname
//   FAKE_CF_FORWARD       host:port to forward to (forward/postgres modes), or FAKE_CF_FORWARD_MAP JSON {hostname: "host:port"}
//   FAKE_CF_START_DELAY_MS  wait this long after the startup line before binding (slow start)
//   FAKE_CF_FAIL          exit (status 1 at once) | usage (Incorrect Usage, status 0) | origin (Error validating origin URL)
//   FAKE_CF_CRASH_AFTER_MS  exit with status 1 this long after binding
//   FAKE_CF_CRASH_ONCE_FILE with CRASH_AFTER: crash only if this file does not exist yet (and create it)
//   FAKE_CF_LOGIN         on-connect: print the Access login prompt when a connection arrives (as the real one does)
//   FAKE_CF_PG_REPLY      postgres mode: the byte answered to an SSLRequest (default S)
//   FAKE_CF_STATE_DIR     append one line per accepted connection to <dir>/<hostname>.conns and the pid to <hostname>.pids;
//                         <hostname>.bound gets the epoch milliseconds of the bind
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

if (positionals[0] !== "access" || positionals[1] !== "tcp" || hostname === "" || env.FAKE_CF_FAIL === "usage") {
  process.stdout.write("Incorrect Usage: flag provided but not defined\n");
  process.exit(0);
}
const match = /^(?:tcp:\/\/)?([\d.]+):(\d+)$/.exec(url);
if (match === null || env.FAKE_CF_FAIL === "origin") {
  log("ERR", `Error validating origin URL: ${url}`);
  process.exit(1);
}
if (env.FAKE_CF_FAIL === "exit") {
  log("ERR", "failed to start");
  process.exit(1);
}
const stateDir = env.FAKE_CF_STATE_DIR;
if (stateDir) appendFileSync(`${stateDir}/${hostname}.pids`, `${process.pid}\n`);

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

const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (client) => {
  if (stateDir) appendFileSync(`${stateDir}/${hostname}.conns`, "conn\n");
  if (env.FAKE_CF_LOGIN === "on-connect") {
    log("INF", "Please open the following URL and log in with your Cloudflare account:");
    log("INF", `https://${hostname}/cdn-cgi/access/cli?redirect_url=...`);
    return;
  }
  client.on("error", () => client.destroy());
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
    const crashAfter = Number(env.FAKE_CF_CRASH_AFTER_MS ?? 0);
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
const delay = Number(env.FAKE_CF_START_DELAY_MS ?? 0);
if (delay > 0) setTimeout(bind, delay);
else bind();

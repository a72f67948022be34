#!/usr/bin/env bun
// The bench's stand-in for `cloudflared access tcp` (same argv): instead of serving its port itself it asks the run's
// one backend process (backend.ts, control port in BENCH_BACKEND) to listen there, so every route ends in the same
// process. The mode follows the hostname's first label (cft-sink… → sink, cft-slow… → slow, anything else echo).
// The backend writes the epoch milliseconds of the bind to <BENCH_STATE_DIR>/<hostname>.bound (cold-start overhead).
// Dies on SIGTERM, giving the port back.
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { hostname: { type: "string" }, url: { type: "string" } }, allowPositionals: true, strict: false });
const hostname = String(values.hostname ?? "");
const port = Number(/:(\d+)$/.exec(String(values.url ?? ""))?.[1] ?? NaN);
const control = `http://127.0.0.1:${process.env.BENCH_BACKEND}`;
const label = hostname.replace(/^cft-/, "").split(".")[0] ?? "";
const mode = label === "sink" ? "sink" : label === "slow" ? "slow" : "echo";

process.stderr.write(`${new Date().toISOString()} INF Start Websocket listener host=127.0.0.1:${port}\n`);
const stateDir = process.env.BENCH_STATE_DIR;
const bound = stateDir ? `&bound=${encodeURIComponent(`${stateDir}/${hostname}.bound`)}` : "";
const answer = await fetch(`${control}/listen?port=${port}&mode=${mode}${bound}`);
if (!answer.ok) {
  const reason = await answer.text();
  process.stderr.write(`${new Date().toISOString()} ERR listen tcp 127.0.0.1:${port}: bind: ${/in use/i.test(reason) ? "address already in use" : reason}\n`);
  process.exit(1);
}
process.on("SIGTERM", async () => {
  await fetch(`${control}/close?port=${port}`).catch(() => undefined);
  process.exit(0);
});
setInterval(() => undefined, 1 << 30);

#!/usr/bin/env bun
// The bench's stand-in for `cloudflared access tcp` (same argv): instead of serving its port itself it asks the run's
// one backend process (backend.ts, control port in BENCH_BACKEND) to listen there, so every route ends in the same
// process. The mode follows the hostname's first label (cft-sink… → sink, cft-slow… → slow, anything else echo).
// <BENCH_STATE_DIR>/<hostname>.bound gets the epoch milliseconds of the bind (cold-start overhead). Dies on SIGTERM,
// giving the port back.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { hostname: { type: "string" }, url: { type: "string" } }, allowPositionals: true, strict: false });
const hostname = String(values.hostname ?? "");
const port = Number(/:(\d+)$/.exec(String(values.url ?? ""))?.[1] ?? NaN);
const control = `http://127.0.0.1:${process.env.BENCH_BACKEND}`;
const label = hostname.replace(/^cft-/, "").split(".")[0] ?? "";
const mode = label === "sink" ? "sink" : label === "slow" ? "slow" : "echo";

process.stderr.write(`${new Date().toISOString()} INF Start Websocket listener host=127.0.0.1:${port}\n`);
const answer = await fetch(`${control}/listen?port=${port}&mode=${mode}`);
if (!answer.ok) {
  const reason = await answer.text();
  process.stderr.write(`${new Date().toISOString()} ERR listen tcp 127.0.0.1:${port}: bind: ${/in use/i.test(reason) ? "address already in use" : reason}\n`);
  process.exit(1);
}
const { boundAt } = (await answer.json()) as { boundAt: number };
if (process.env.BENCH_STATE_DIR) writeFileSync(`${process.env.BENCH_STATE_DIR}/${hostname}.bound`, `${boundAt}\n`);
process.on("SIGTERM", async () => {
  await fetch(`${control}/close?port=${port}`).catch(() => undefined);
  process.exit(0);
});
setInterval(() => undefined, 1 << 30);

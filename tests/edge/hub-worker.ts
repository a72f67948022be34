// A scripted stand-in for an edge worker (tests/edge/hub.test.ts): it speaks the hub's messages, and what it does is
// chosen by TTP_HUB_SCRIPT.
import { parentPort } from "node:worker_threads";
import type { ToMain, ToWorker } from "../../src/edge/messages.ts";

const port = parentPort as NonNullable<typeof parentPort>;
const post = (message: ToMain) => port.postMessage(message);
const script = process.env.TTP_HUB_SCRIPT;

port.on("message", (message: ToWorker) => {
  if (message.t === "withdraw") setTimeout(() => post({ t: "withdrawn", seq: message.seq }), script === "slow-ack" ? 300 : 0);
  if (message.t === "leased" && script === "acquire-then-exit") process.exit(1);
  if (message.t === "drain") post({ t: "drained" });
});
post({ t: "listening" });
if (script === "stale-lease") post({ t: "lease", id: 1, hostname: "cft-a.hub.test", port: 1 });
if (script === "acquire-then-exit") post({ t: "acquire", id: 65, hostname: "cft-a.hub.test" });

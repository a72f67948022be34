// The edge closing a session mid-stream (as an edge restart does): the real cloudflared drops the local connection, the
// client sees its connection close, the proxy writes the summary and keeps serving on the same tunnel.
import { describe, expect, test } from "bun:test";
import { echoRoundTrip, tlsClient } from "../helpers/clients.ts";
import { tlsEchoServer } from "../helpers/servers.ts";
import { eventually } from "../helpers/admin.ts";
import { within } from "../helpers/deadline.ts";
import { bridgedChain, realSkipped } from "./harness.ts";

const SNI = "cut.demo.test";
const TUNNEL = `cft-${SNI}`;

describe.skipIf(realSkipped())("the edge closing mid-stream, with the real cloudflared", () => {
  const real = bridgedChain(tlsEchoServer, [TUNNEL]);

  test("the client sees the close, the summary is written, the next session works on the same tunnel", async () => {
    const socket = await tlsClient(real.proxy.port, SNI);
    const payload = new Uint8Array(200_000).fill(0x5a);
    expect((await echoRoundTrip(socket, payload)).length).toBeGreaterThanOrEqual(payload.length);
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => undefined);
    expect(real.chain.edge.cut(TUNNEL)).toBe(1);
    await within(10_000, closed, "the client's close after the edge cut its session");
    const summary = await real.proxy.waitFor((l) => l.msg === "connection" && l.sni === SNI);
    expect(summary).toMatchObject({ tunnel: TUNNEL });
    expect(Number(summary.bytes_out)).toBeGreaterThan(payload.length);
    await eventually(() => real.chain.edge.open(TUNNEL), (open) => open === 0);

    const next = await tlsClient(real.proxy.port, SNI);
    expect((await echoRoundTrip(next, new TextEncoder().encode("after the cut"))).toString()).toBe("after the cut");
    next.destroy();
    expect(real.proxy.lines.filter((l) => l.msg === "tunnel starting")).toHaveLength(1);
    expect(real.proxy.lines.some((l) => l.msg === "tunnel exited unexpectedly")).toBe(false);
    expect(real.proxy.proc.exitCode).toBeNull();
  });
});

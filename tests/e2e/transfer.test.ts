import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { within } from "../helpers/deadline.ts";
import { startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { CryptoHasher } from "bun";
import { BLOCK, makeBlockSource, transfer } from "../helpers/stream.ts";
import { clientHello, records } from "../helpers/builders.ts";
import { rssBytes } from "../helpers/admin.ts";
import { slowSinkServer } from "../helpers/servers.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe("bulk transfer through the proxy", () => {
  let proxy: ProxyProcess;

  beforeAll(async () => {
    proxy = await startProxy(["--log-level", "info"], { FAKE_CF_MODE: "echo" });
  });
  afterAll(async () => {
    await proxy.stop();
  });

  test("1 GiB each way, byte-exact, with half-close", async () => {
    const prelude = records(clientHello({ names: ["bulk.demo.test"] }));
    const result = await within(150_000, transfer(proxy.port, prelude, GiB, { echo: true }), "1 GiB each way through the proxy");
    expect(result.sent).toBe(GiB);
    expect(result.received).toBe(GiB);
    expect(result.receivedHash).toBe(result.sentHash);
    const summary = await proxy.waitFor((l) => l.msg === "connection" && l.sni === "bulk.demo.test");
    expect(summary.outcome).toBe("proxied");
    expect(Number(summary.bytes_in)).toBe(GiB + prelude.length);
    expect(Number(summary.bytes_out)).toBe(GiB + prelude.length);
  }, 180_000);

  test("a slow reading client does not grow the proxy's memory", async () => {
    const prelude = records(clientHello({ names: ["slow-client.demo.test"] }));
    await within(10_000, transfer(proxy.port, prelude, 8 * MiB, { echo: true }), "8 MiB of warm-up");
    const { result, growth } = await within(40_000, measurePeak(proxy.proc.pid, () => transfer(proxy.port, prelude, 64 * MiB, { readDelayMs: 5, echo: true })), "64 MiB to a slow reader");
    expect(result.receivedHash).toBe(result.sentHash);
    expect(growth).toBeLessThan(24 * MiB);
  }, 120_000);
});

test("a slow reading backend does not grow the proxy's memory", async () => {
  const sink = slowSinkServer(5);
  const proxy = await startProxy(["--log-level", "info"], { FAKE_CF_MODE: "forward", FAKE_CF_FORWARD: `127.0.0.1:${sink.port}` });
  const prelude = records(clientHello({ names: ["slow-backend.demo.test"] }));
  await within(10_000, transfer(proxy.port, prelude, 8 * MiB), "8 MiB of warm-up");
  const { result, growth } = await within(40_000, measurePeak(proxy.proc.pid, () => transfer(proxy.port, prelude, 128 * MiB)), "128 MiB into a slow backend");
  expect(result.tail).toBe(expectedHash(prelude, 128 * MiB));
  expect(growth).toBeLessThan(24 * MiB);
  await proxy.stop();
  sink.close();
}, 120_000);

/** The SHA-256 a sink computes over `prelude` followed by `total` bytes of the block stream. */
function expectedHash(prelude: Uint8Array, total: number): string {
  const hasher = new CryptoHasher("sha256").update(prelude);
  const block = makeBlockSource();
  for (let sent = 0, index = 0; sent < total; sent += BLOCK, index++) hasher.update(block(index).subarray(0, Math.min(BLOCK, total - sent)));
  return hasher.digest("hex");
}

/**
 * Runs `work` while sampling the process's RSS; growth is the peak over the starting value. Callers warm the proxy up
 * first: its first transfer costs a one-off ~30 MB (JIT, allocator arenas, read buffers) whatever the size.
 */
async function measurePeak<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const before = rssBytes(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 10);
  const result = await work();
  clearInterval(sampler);
  return { result, growth: peak - before };
}

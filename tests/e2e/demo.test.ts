// `bun run demo`, with the fake cloudflared and, with --real, through the real one (skipped when it cannot run here).
import { expect, test } from "bun:test";
import { ROOT } from "../helpers/proxy-process.ts";
import { realSkipped } from "../real/harness.ts";

/** Runs the demo; a failed run's output is in `failed`, so the assertion on it shows what went wrong. */
async function demo(args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; out: string; failed: string }> {
  const proc = Bun.spawn([process.execPath, "run", "scripts/demo.ts", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, failed: code === 0 ? "" : `${out}${err}` };
}

test("bun run demo shows a tunnel start and a verified TLS connection", async () => {
  const { code, out, failed } = await demo();
  expect({ code, failed }).toEqual({ code: 0, failed: "" });
  expect(out).toContain("cold (tunnel starts): TLS handshake with SNI db-1.demo.test verified=true alpn=postgresql");
  expect(out).toMatch(/tunnel cft-db-1\.demo\.test became ready on port \d+/);
  expect(out).toContain('echoed "hello through the tunnel"');
  expect(out).toContain("cloudflared = tests/fake-cloudflared.ts");
  expect(out).toContain("proxy stopped with status 0");
});

test.skipIf(realSkipped())("bun run demo --real runs the same through the real cloudflared and the edge stand-in", async () => {
  const { code, out, failed } = await demo(["--real"]);
  expect({ code, failed }).toEqual({ code: 0, failed: "" });
  expect(out).toContain("(the real one)");
  expect(out).toContain("cold (tunnel starts): TLS handshake with SNI db-1.demo.test verified=true alpn=postgresql");
  expect(out).toContain("warm (tunnel reused): TLS handshake");
  expect(out).toContain("the edge stand-in received 2 WebSocket upgrades from cloudflared: GET wss://cft-db-1.demo.test/, GET wss://cft-db-1.demo.test/");
  expect(out).toContain("proxy stopped with status 0");
});

test("bun run demo --real without a usable cloudflared says why and exits 1", async () => {
  const { code, out } = await demo(["--real"], { TTP_REAL_CLOUDFLARED: "/nonexistent/cloudflared" });
  expect(code).toBe(1);
  expect(out).toBe("demo: --real cannot run here: TTP_REAL_CLOUDFLARED=/nonexistent/cloudflared is not an executable\n");
});

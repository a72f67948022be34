import { expect, test } from "bun:test";
import { ROOT } from "../helpers/proxy-process.ts";

test("bun run demo shows a tunnel start and a verified TLS connection", async () => {
  const proc = Bun.spawn([process.execPath, "run", "scripts/demo.ts"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  expect(code).toBe(0);
  expect(out).toContain("cold (tunnel starts): TLS handshake with SNI db-1.demo.test verified=true alpn=postgresql");
  expect(out).toMatch(/tunnel cft-db-1\.demo\.test became ready on port \d+/);
  expect(out).toContain('echoed "hello through the tunnel"');
  expect(out).toContain("proxy stopped with status 0");
});

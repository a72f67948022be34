// A throwaway CA and a server certificate for *.demo.test, made with the openssl CLI, for real TLS handshakes.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCerts {
  readonly dir: string;
  readonly ca: string;
  readonly key: string;
  readonly cert: string;
  readonly caPath: string;
  readonly keyPath: string;
  readonly certPath: string;
}

function openssl(args: string[], cwd: string): void {
  const result = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "ignore", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr.toString()}`);
}

let cached: TestCerts | null = null;

export function testCerts(): TestCerts {
  if (cached !== null) return cached;
  const dir = mkdtempSync(join(tmpdir(), "ttp-certs-"));
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tcp-tunnel-proxy test CA",
    "-keyout", "ca.key", "-out", "ca.pem"], dir);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=db-1.demo.test", "-keyout", "server.key", "-out", "server.csr"], dir);
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:*.demo.test,DNS:db-1.demo.test,DNS:localhost\n");
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
    "-extfile", "ext.cnf", "-out", "server.pem"], dir);
  const path = (name: string) => join(dir, name);
  cached = {
    dir,
    ca: readFileSync(path("ca.pem"), "utf8"),
    key: readFileSync(path("server.key"), "utf8"),
    cert: readFileSync(path("server.pem"), "utf8"),
    caPath: path("ca.pem"),
    keyPath: path("server.key"),
    certPath: path("server.pem"),
  };
  return cached;
}

// The test CA and a server certificate for *.demo.test (valid until 2126), committed under tests/fixtures/certs so
// real TLS handshakes need no openssl at test time. Made with openssl req/x509 (RSA 2048, SAN *.demo.test).
import { readFileSync } from "node:fs";
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

const DIR = join(import.meta.dir, "..", "fixtures", "certs");

export function testCerts(): TestCerts {
  const caPath = join(DIR, "ca.pem");
  const keyPath = join(DIR, "server.key");
  const certPath = join(DIR, "server.pem");
  return {
    dir: DIR,
    ca: readFileSync(caPath, "utf8"),
    key: readFileSync(keyPath, "utf8"),
    cert: readFileSync(certPath, "utf8"),
    caPath,
    keyPath,
    certPath,
  };
}

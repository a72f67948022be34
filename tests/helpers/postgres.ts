// A real PostgreSQL server with TLS for end-to-end tests, run as the `postgres` user (it refuses to run as root).
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import type { TestCerts } from "./certs.ts";

export interface PostgresServer {
  readonly port: number;
  stop(): void;
}

function binDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) if (existsSync(join(root, version, "bin", "postgres"))) return join(root, version, "bin");
  return null;
}

/** Why a real PostgreSQL cannot run here, or null when it can. */
export function postgresUnavailable(): string | null {
  if (binDir() === null) return "PostgreSQL server binaries not installed (apt-get install postgresql)";
  if (Bun.which("psql") === null) return "psql not installed";
  if (userInfo().uid === 0 && Bun.spawnSync(["id", "postgres"]).exitCode !== 0) return "no postgres user to run the server as";
  return null;
}

function run(argv: string[]): void {
  const asPostgres = userInfo().uid === 0 ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
  const result = Bun.spawnSync(asPostgres, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv[0]} failed: ${result.stderr.toString()}${result.stdout.toString()}`);
}

export function startPostgres(certs: TestCerts, port: number): PostgresServer {
  const bin = binDir() as string;
  const dir = mkdtempSync(join(tmpdir(), "ttp-pg-"));
  const data = join(dir, "data");
  const owner = userInfo().uid === 0 ? Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim() : String(userInfo().uid);
  const group = userInfo().uid === 0 ? Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim() : String(userInfo().gid);
  chownSync(dir, Number(owner), Number(group));
  run([join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync"]);
  for (const [from, to] of [[certs.certPath, "server.crt"], [certs.keyPath, "server.key"]] as const) {
    copyFileSync(from, join(data, to));
    chownSync(join(data, to), Number(owner), Number(group));
    chmodSync(join(data, to), 0o600);
  }
  writeFileSync(
    join(data, "postgresql.auto.conf"),
    [`listen_addresses = '127.0.0.1'`, `port = ${port}`, `unix_socket_directories = '${dir}'`, "ssl = on", "fsync = off"].join("\n") + "\n",
  );
  writeFileSync(join(data, "pg_hba.conf"), "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n");
  run([join(bin, "pg_ctl"), "-D", data, "-l", join(dir, "log"), "-w", "-t", "30", "start"]);
  return { port, stop: () => run([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]) };
}

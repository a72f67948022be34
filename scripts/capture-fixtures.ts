// Records the opening bytes real clients send (openssl s_client, curl, node:tls, psql) into tests/fixtures/.
// Run by hand (`bun run scripts/capture-fixtures.ts`); the fixtures are committed so tests never depend on the clients.
import { writeFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { SSL_REQUEST_CODE } from "../src/protocol/postgres.ts";
import { concat } from "../src/protocol/bytes.ts";

/** Accepts one connection, answers an SSLRequest with S, and keeps what arrives until the client has been quiet for a while. */
function capture(name: string, run: (port: number) => void): Promise<void> {
  return new Promise((resolve) => {
    const parts: Uint8Array[] = [];
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        binaryType: "uint8array",
        data(socket, chunk) {
          parts.push(chunk);
          if (chunk.length === 8 && new DataView(chunk.buffer, chunk.byteOffset).getUint32(4) === SSL_REQUEST_CODE) socket.write("S");
          clearTimeout(quiet);
          quiet = setTimeout(() => {
            writeFileSync(`tests/fixtures/${name}.bin`, concat(parts));
            console.log(`${name}: ${concat(parts).length} bytes`);
            socket.terminate();
            listener.stop(true);
            resolve();
          }, 500);
        },
      },
    });
    run(listener.port);
  });
}

const spawn = (argv: string[]) => Bun.spawn(argv, { stdout: "ignore", stderr: "ignore", stdin: "ignore" });

await capture("openssl-s_client", (port) => spawn(["openssl", "s_client", "-connect", `127.0.0.1:${port}`, "-servername", "db-1.demo.test"]));
await capture("curl", (port) =>
  spawn(["curl", "-sk", "--resolve", `db-1.demo.test:${port}:127.0.0.1`, `https://db-1.demo.test:${port}/`]));
await capture("node-tls", (port) => {
  const socket = tlsConnect({ host: "127.0.0.1", port, servername: "db-1.demo.test", ALPNProtocols: ["h2", "http/1.1"] });
  socket.on("error", () => undefined);
});
await capture("psql", (port) =>
  spawn(["psql", `host=db-1.demo.test hostaddr=127.0.0.1 port=${port} sslmode=require user=app dbname=app connect_timeout=3`]));
process.exit(0);

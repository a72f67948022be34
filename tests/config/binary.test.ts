import { expect, test } from "bun:test";
import { freePort, proxyCommand } from "../helpers/proxy-process.ts";
import { rawConnect } from "../helpers/clients.ts";

test.skipIf(process.env.TTP_FROM_SOURCE === "1")("the compiled binary is what the tests run", () => {
  expect(proxyCommand()[0]).toEndWith("tcp-tunnel-proxy");
});

test("a bad flag exits 2 with one line naming it", async () => {
  const proc = Bun.spawn([...proxyCommand(), "--idle-timeout", "banana"], { stderr: "pipe", stdout: "pipe" });
  expect(await proc.exited).toBe(2);
  const stderr = await new Response(proc.stderr).text();
  expect(stderr).toBe('tcp-tunnel-proxy: invalid --idle-timeout "banana": expected a duration like 300s or 1500ms\n');
});

test("a bad environment variable exits 2 naming the variable", async () => {
  const proc = Bun.spawn(proxyCommand(), { stderr: "pipe", env: { ...process.env, PORT_RANGE_START: "20100", PORT_RANGE_END: "20000" } });
  expect(await proc.exited).toBe(2);
  expect(await new Response(proc.stderr).text()).toContain("PORT_RANGE_START/PORT_RANGE_END");
});

test("--version prints the package version", async () => {
  const proc = Bun.spawn([...proxyCommand(), "--version"], { stdout: "pipe" });
  expect(await proc.exited).toBe(0);
  const { version } = (await Bun.file(`${import.meta.dir}/../../package.json`).json()) as { version: string };
  expect(await new Response(proc.stdout).text()).toBe(`tcp-tunnel-proxy ${version}\n`);
});

test("--help exits 0 and lists the flags", async () => {
  const proc = Bun.spawn([...proxyCommand(), "--help"], { stdout: "pipe" });
  expect(await proc.exited).toBe(0);
  const text = await new Response(proc.stdout).text();
  expect(text).toContain("--trusted-proxies CIDRS|any");
  expect(text).toContain("env READ_HELLO_TIMEOUT; default 10s");
});

test("the binary honours LISTEN_ADDR and LOG_FORMAT", async () => {
  const port = freePort();
  const proc = Bun.spawn(proxyCommand(), {
    stderr: "pipe",
    env: { ...process.env, LISTEN_ADDR: `127.0.0.1:${port}`, LOG_FORMAT: "json", PORT_RANGE_START: "41000", PORT_RANGE_END: "41009" },
  });
  const reader = proc.stderr.getReader();
  let text = "";
  while (!text.includes('"msg":"listening"')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const starting = JSON.parse(text.split("\n")[0] as string) as Record<string, unknown>;
  expect(starting.listen).toBe(`127.0.0.1:${port}`);
  expect(starting.port_range).toBe("41000-41009");
  const socket = await rawConnect(port);
  socket.destroy();
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
});

test("a port that is taken exits 1 naming the address", async () => {
  const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const proc = Bun.spawn([...proxyCommand(), "--listen", `127.0.0.1:${holder.port}`], { stderr: "pipe" });
  expect(await proc.exited).toBe(1);
  const stderr = await new Response(proc.stderr).text();
  expect(stderr).toContain(`cannot listen listen=127.0.0.1:${holder.port}`);
  holder.stop(true);
});

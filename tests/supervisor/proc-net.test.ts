import { expect, test } from "bun:test";
import { isLoopbackListener, listenerOf, procNetProbe, scanListeners } from "../../src/supervisor/proc-net.ts";

const TABLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000 100 0 0 10 0
   1: 00000000:4A38 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000 100 0 0 10 0
   2: 0100007F:4E20 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000 100 0 0 10 0
`;

test("lines are classified: LISTEN entries give their local address, others end the listening section", () => {
  const lines = TABLE.split("\n").map(listenerOf);
  expect(lines).toEqual([null, "0100007F:4E20", "00000000:4A38", "other", null]);
  expect(isLoopbackListener("0100007F:4E20", 20000)).toBe(true);
  expect(isLoopbackListener("00000000:4E20", 20000)).toBe(false);
});

test("the real table shows a loopback listener, and not one that has closed", async () => {
  const probe = procNetProbe();
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  expect(await probe.isListening(listener.port)).toBe(true);
  expect(probe.isHeld(listener.port)).toBe(true);
  listener.stop(true);
  expect(await probe.isListening(listener.port)).toBe(false);
  expect(probe.isHeld(listener.port)).toBe(false);
});

test("a dual-stack IPv6 listener holds the port for the pool but is not ready on 127.0.0.1", async () => {
  const probe = procNetProbe();
  const listener = Bun.listen({ hostname: "::", port: 0, socket: { data() {} } });
  expect(await probe.isListening(listener.port)).toBe(false);
  expect(probe.isHeld(listener.port)).toBe(true);
  listener.stop(true);
});

test("a missing table is reported as such", async () => {
  expect(await scanListeners("/proc/net/does-not-exist", () => true)).toBeNull();
});

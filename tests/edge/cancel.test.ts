import { expect, test } from "bun:test";
import { forwardCancel } from "../../src/edge/cancel.ts";
import { within } from "../helpers/deadline.ts";
import { cancelRequest } from "../helpers/wire.ts";

/** A backend that records what each connection sent, when it saw our FIN, and when the connection closed. */
function backend(closesOnFin: boolean) {
  const seen: { bytes: number[]; fin: Promise<void>; closed: Promise<void> }[] = [];
  const listener = Bun.listen<{ bytes: number[]; fin: () => void; closed: () => void }>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    data: undefined as never,
    socket: {
      open(socket) {
        let fin!: () => void;
        let closed!: () => void;
        const record = { bytes: [] as number[], fin: new Promise<void>((r) => (fin = r)), closed: new Promise<void>((r) => (closed = r)) };
        seen.push(record);
        socket.data = { bytes: record.bytes, fin, closed };
      },
      data: (socket, chunk) => void socket.data.bytes.push(...chunk),
      end(socket) {
        socket.data.fin();
        if (closesOnFin) socket.end();
      },
      close: (socket) => socket.data.closed(),
    },
  });
  return { port: listener.port, seen, stop: () => listener.stop(true) };
}

test("each forward writes the message, then FIN, and closes when the backend closes", async () => {
  const server = backend(true);
  const message = cancelRequest(4242, 99);
  expect(await within(2000, forwardCancel([server.port], message), "the forward")).toBe(1);
  const [record] = server.seen;
  await within(1000, record!.fin, "our FIN after the message");
  expect(record!.bytes).toEqual([...message]);
  await within(1000, record!.closed, "the close once the backend closed");
  server.stop();
});

test("a backend that never closes is closed by the forward after its linger", async () => {
  const server = backend(false);
  expect(await forwardCancel([server.port], cancelRequest(1, 2), 100)).toBe(1);
  await within(1000, server.seen[0]!.closed, "the close after the 100 ms linger");
  server.stop();
});

test("a port nobody listens on counts as not forwarded; no ports, nothing to do", async () => {
  const server = backend(true);
  const port = server.port;
  server.stop();
  expect(await within(2000, forwardCancel([port], cancelRequest(1, 2)), "the failed forward")).toBe(0);
  expect(await forwardCancel([], cancelRequest(1, 2))).toBe(0);
});

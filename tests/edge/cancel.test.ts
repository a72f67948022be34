import { expect, test } from "bun:test";
import { forwardCancel, type Slots } from "../../src/edge/cancel.ts";
import { within } from "../helpers/deadline.ts";
import { eventually } from "../helpers/admin.ts";
import { cancelRequest } from "../helpers/wire.ts";

/** Places as --max-connections counts them: `max` at most, and how many are held now. */
function slots(max = 100): Slots & { held: number } {
  const s = {
    held: 0,
    take: () => (s.held < max ? (s.held++, true) : false),
    give: () => void s.held--,
  };
  return s;
}

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
  const places = slots();
  const message = cancelRequest(4242, 99);
  expect(await within(2000, forwardCancel([server.port], message, places), "the forward")).toBe(1);
  const [record] = server.seen;
  await within(1000, record!.fin, "our FIN after the message");
  expect(record!.bytes).toEqual([...message]);
  await within(1000, record!.closed, "the close once the backend closed");
  await eventually(() => places.held, (held) => held === 0, 1000);
  server.stop();
});

test("a backend that never closes is closed by the forward after its linger", async () => {
  const server = backend(false);
  const places = slots();
  expect(await forwardCancel([server.port], cancelRequest(1, 2), places, 100)).toBe(1);
  expect(places.held).toBe(1);
  await within(1000, server.seen[0]!.closed, "the close after the 100 ms linger");
  expect(places.held).toBe(0);
  server.stop();
});

test("a port nobody listens on counts as not forwarded; no ports, nothing to do", async () => {
  const server = backend(true);
  const port = server.port;
  server.stop();
  const places = slots();
  expect(await within(2000, forwardCancel([port], cancelRequest(1, 2), places), "the failed forward")).toBe(0);
  expect(await forwardCancel([], cancelRequest(1, 2), places)).toBe(0);
  expect(places.held).toBe(0);
});

test("forwards count against --max-connections: without a free place nothing is connected", async () => {
  const server = backend(true);
  const places = slots(1);
  expect(await within(2000, forwardCancel([server.port, server.port], cancelRequest(1, 2), places), "the forwards")).toBe(1);
  await eventually(() => places.held, (held) => held === 0, 1000);
  expect(server.seen).toHaveLength(1);
  server.stop();
});

/**
 * A listener that accepts nothing until told to (backlog 0, so one queued connection fills it and further connects
 * hang in SYN_SENT), then accepts for a few seconds and reports each connection's bytes and how it ended.
 */
async function stalledListener() {
  const script = `
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
print(s.getsockname()[1], flush=True)
sys.stdin.readline()
s.settimeout(6)
try:
    while True:
        c, _ = s.accept(); c.settimeout(2); data = b""
        try:
            while True:
                chunk = c.recv(64)
                if not chunk: break
                data += chunk
            print("eof", len(data), flush=True)
        except ConnectionResetError: print("reset", len(data), flush=True)
        except socket.timeout: print("open", len(data), flush=True)
except socket.timeout: pass
print("done", flush=True)
`;
  const proc = Bun.spawn(["python3", "-c", script], { stdin: "pipe", stdout: "pipe" });
  const lines = (async function* () {
    let text = "";
    for await (const chunk of proc.stdout) {
      text += new TextDecoder().decode(chunk);
      const parts = text.split("\n");
      text = parts.pop() ?? "";
      yield* parts;
    }
  })();
  const port = Number((await lines.next()).value);
  const rest = async () => {
    const seen: string[] = [];
    for await (const line of lines) {
      if (line === "done") break;
      seen.push(line);
    }
    return seen;
  };
  return { port, proc, rest, accept: () => void proc.stdin.write("go\n") };
}

test("a forward whose connect completes after its linger is reset at once, its place already given back", async () => {
  const listener = await stalledListener();
  // Fills the accept queue: the first is queued, the second hangs like the forward will.
  const fillers = [0, 1].map(() => Bun.connect({ hostname: "127.0.0.1", port: listener.port, socket: { data() {}, open: (s) => void s.end() } }));
  await within(2000, fillers[0] as Promise<unknown>, "the first queued connection");
  const places = slots();
  expect(await within(2000, forwardCancel([listener.port], cancelRequest(1, 2), places, 100), "the forward's linger")).toBe(0);
  expect(places.held).toBe(0);
  listener.accept();
  const seen = await within(12_000, listener.rest(), "the listener's report");
  expect(seen).toHaveLength(3);
  expect(seen.filter((line) => line.endsWith(" 16"))).toEqual([]);
  listener.proc.kill();
}, 20_000);

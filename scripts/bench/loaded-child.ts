// The loaded scenario's two load processes (issue 13), each with its own event loop so neither delays the other's
// clock: `streams` keeps K connections echoing 256 KiB chunks as fast as they go; `probe` opens one new connection
// every 10 ms and times connect + ClientHello + first echoed byte. Both start on "go" (stdin) and measure from
// go + warmup for the given time; `streams` keeps its load on until "stop" (stdin), then prints its JSON result.
// `bun loaded-child.ts streams|probe PORT SNI STREAMS_OR_INTERVAL WARMUP_MS MEASURE_MS [WINDOW_BYTES, 0 = no limit]`;
// loaded.ts starts them.
import type { Socket } from "bun";
import { clientHello, records } from "../../tests/helpers/builders.ts";
import { connectToFirstByte } from "./load.ts";

export const CHUNK = 256 * 1024;
/** A probe not answered within this long counts as failed (the hello timeout of the proxy is 10 s). */
const PROBE_GIVE_UP_MS = 10_000;

export interface StreamsResult {
  readonly streams: number;
  /** Echoed payload bytes received within the window, all streams together. */
  readonly bytes: number;
  readonly seconds: number;
  readonly failed: number;
}

export interface ProbeResult {
  /** Milliseconds, sorted. */
  readonly samples: number[];
  readonly failed: number;
}

function lines(onLine: (line: string) => void): void {
  let partial = "";
  process.stdin.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) onLine(line.trim());
  });
}

/**
 * One stream: the hello and its echo, then 256 KiB chunks written as fast as the socket takes them while at most
 * `window` bytes are unechoed (window = CHUNK: write a chunk, read it all back, again; Infinity: only TCP's own
 * backpressure limits the writer). `onBytes` sees every echoed byte.
 */
function stream(port: number, hello: Uint8Array, window: number, onBytes: (n: number) => void, onLost: () => void, go: Promise<void>): Promise<Socket<undefined>> {
  const chunk = new Uint8Array(CHUNK).map((_, i) => i * 7);
  let helloLeft = hello.length;
  let unechoed = 0;
  let pending: Uint8Array | null = null;
  let pumping = false;
  const pump = (socket: Socket<undefined>) => {
    if (!pumping) return;
    for (;;) {
      if (pending === null) {
        if (unechoed + CHUNK > window) return;
        pending = chunk;
        unechoed += CHUNK;
      }
      const taken = socket.write(pending);
      if (taken < 0) return;
      if (taken < pending.length) return void (pending = pending.subarray(taken));
      pending = null;
    }
  };
  return new Promise((resolve, reject) => {
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        open: (socket) => void socket.write(hello),
        data(socket, bytes) {
          if (helloLeft > 0) {
            helloLeft -= bytes.length;
            if (helloLeft > 0) return;
            resolve(socket);
            return void go.then(() => {
              pumping = true;
              pump(socket);
            });
          }
          onBytes(bytes.length);
          unechoed -= bytes.length;
          pump(socket);
        },
        drain: pump,
        close() {
          if (helloLeft <= 0) onLost();
          else reject(new Error("stream closed before its hello was echoed"));
        },
        connectError: (_, error) => reject(error),
      },
    }).catch(reject);
  });
}

async function runStreams(port: number, hello: Uint8Array, count: number, window: number, warmupMs: number, measureMs: number): Promise<void> {
  let measuring = false;
  let bytes = 0;
  let failed = 0;
  let stopping = false;
  let release!: () => void;
  const go = new Promise<void>((resolve) => (release = resolve));
  const sockets = await Promise.all(
    Array.from({ length: count }, () => stream(port, hello, window, (n) => void (measuring && (bytes += n)), () => void (stopping || failed++), go).catch(() => (failed++, null))),
  );
  let from = 0;
  let seconds = 0;
  const endWindow = () => {
    if (!measuring) return;
    measuring = false;
    seconds = (performance.now() - from) / 1000;
  };
  lines((line) => {
    if (line === "go") {
      release();
      setTimeout(() => {
        measuring = true;
        from = performance.now();
        setTimeout(endWindow, measureMs);
      }, warmupMs);
    } else if (line === "stop") {
      // The probe's clock may run ahead of this busy loop's timers: the window then ends here.
      endWindow();
      stopping = true;
      const result: StreamsResult = { streams: count, bytes, seconds, failed };
      process.stdout.write(`${JSON.stringify(result)}\n`);
      for (const socket of sockets) socket?.terminate();
      process.exit(0);
    }
  });
  process.stdout.write("connected\n");
}

function runProbe(port: number, hello: Uint8Array, intervalMs: number, warmupMs: number, measureMs: number): void {
  const samples: number[] = [];
  let failed = 0;
  const inFlight = new Set<Promise<void>>();
  const probe = () => {
    const attempt = Promise.race([connectToFirstByte(port, hello), Bun.sleep(PROBE_GIVE_UP_MS).then(() => null)]).then(
      (ms) => void (ms === null ? failed++ : samples.push(ms)),
      () => void failed++,
    );
    inFlight.add(attempt);
    void attempt.then(() => inFlight.delete(attempt));
  };
  lines((line) => {
    if (line !== "go") return;
    setTimeout(() => {
      const timer = setInterval(probe, intervalMs);
      setTimeout(async () => {
        clearInterval(timer);
        await Promise.all(inFlight);
        const result: ProbeResult = { samples: samples.sort((a, b) => a - b), failed };
        process.stdout.write(`${JSON.stringify(result)}\n`);
        process.exit(0);
      }, measureMs);
    }, warmupMs);
  });
  process.stdout.write("connected\n");
}

if (import.meta.main) {
  const [role, port, sni, n, warmup, measure, window] = process.argv.slice(2);
  const hello = records(clientHello({ names: [String(sni)], alpn: ["postgresql"] }));
  if (role === "streams") await runStreams(Number(port), hello, Number(n), Number(window) || Infinity, Number(warmup), Number(measure));
  else runProbe(Number(port), hello, Number(n), Number(warmup), Number(measure));
}

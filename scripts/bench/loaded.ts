// The loaded scenario as the bench runs it: starts the two load processes of go/loaded.go (the streams and
// the new-connection probe, each its own process so neither delays the other's clock) against one route, lets them
// go together, samples the route's RSS meanwhile, and collects their results.
import { hex, peersBinary } from "./peers.ts";

export interface LoadedOptions {
  readonly streams: number;
  /** Unechoed bytes a stream may have in flight (256 KiB: one chunk, then wait for its echo); 0 = no limit. */
  readonly window: number;
  readonly intervalMs: number;
  readonly warmupMs: number;
  readonly measureMs: number;
}

interface StreamsResult {
  readonly streams: number;
  /** Echoed payload bytes received within the window, all streams together. */
  readonly bytes: number;
  readonly seconds: number;
  readonly failed: number;
  /** Every byte echoed from "go" to "stop", for the cost per byte over the same span as the CPU times. */
  readonly bytesSinceGo: number;
  readonly cpuMs: number;
  readonly cpuAtGoMs: number;
}

export interface ProbeResult {
  /** Milliseconds, sorted. */
  readonly samples: number[];
  readonly failed: number;
  readonly cpuMs: number;
  readonly cpuAtGoMs: number;
}

export interface LoadedResult {
  /** Echoed MB/s (10^6 bytes) of all streams together. */
  readonly throughput: number;
  /** Echoed MB from "go" to "stop": the span of `loadCpuMs` and of the meter. */
  readonly megabytesSinceGo: number;
  readonly probe: ProbeResult;
  readonly streamsFailed: number;
  /** The highest RSS of `pid` seen during the run, bytes (0 without a pid). */
  readonly peakRss: number;
  /** CPU time of both load processes from "go" to their end, ms. */
  readonly loadCpuMs: number;
}

/** Lines of a child's stdout, one at a time. */
function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return async () => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("load process exited early");
      buffered += decoder.decode(value, { stream: true });
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
}

/** Reads other processes' CPU time at "go" and at "stop", the span the load processes report theirs over. */
export interface Meter {
  begin(): void;
  end(): void;
}

/** Runs both load processes against `port` and samples `rss` (the route's resident set) while they run. */
export async function loadedScenario(port: number, hello: Uint8Array, options: LoadedOptions, rss: () => number, meter: Meter): Promise<LoadedResult> {
  const timing = ["--warmup", options.warmupMs, "--measure", options.measureMs].map(String);
  const start = (args: string[]) =>
    Bun.spawn([peersBinary(), ...args, "--port", String(port), "--hello", hex(hello), ...timing], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const streams = start(["streams", "--streams", String(options.streams), "--window", String(options.window)]);
  const probe = start(["probe", "--interval", String(options.intervalMs)]);
  const fromStreams = lineReader(streams.stdout);
  const fromProbe = lineReader(probe.stdout);
  try {
    if ((await fromStreams()) !== "connected" || (await fromProbe()) !== "connected") throw new Error("load processes did not start");
    let peakRss = rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rss())), 100);
    meter.begin();
    for (const child of [streams, probe]) {
      child.stdin.write("go\n");
      child.stdin.flush();
    }
    const probed = JSON.parse(await fromProbe()) as ProbeResult;
    streams.stdin.write("stop\n");
    streams.stdin.flush();
    const streamed = JSON.parse(await fromStreams()) as StreamsResult;
    meter.end();
    clearInterval(sampler);
    return {
      throughput: streamed.bytes / 1e6 / streamed.seconds,
      megabytesSinceGo: streamed.bytesSinceGo / 1e6,
      probe: probed,
      streamsFailed: streamed.failed,
      peakRss,
      loadCpuMs: streamed.cpuMs - streamed.cpuAtGoMs + probed.cpuMs - probed.cpuAtGoMs,
    };
  } finally {
    streams.kill("SIGKILL");
    probe.kill("SIGKILL");
    await Promise.all([streams.exited, probe.exited]);
  }
}

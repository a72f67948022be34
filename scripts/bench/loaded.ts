// The loaded scenario (issue 13) as the bench runs it: starts the two load processes of loaded-child.ts against one
// route, lets them go together, samples the route's RSS meanwhile, and collects their results.
import type { ProbeResult, StreamsResult } from "./loaded-child.ts";

const CHILD = `${import.meta.dir}/loaded-child.ts`;

export interface LoadedOptions {
  readonly streams: number;
  /** Unechoed bytes a stream may have in flight (CHUNK: one chunk, then wait for its echo); 0 = no limit. */
  readonly window: number;
  readonly intervalMs: number;
  readonly warmupMs: number;
  readonly measureMs: number;
}

export interface LoadedResult {
  /** Echoed MB/s (10^6 bytes) of all streams together. */
  readonly throughput: number;
  readonly probe: ProbeResult;
  readonly streamsFailed: number;
  /** The highest RSS of `pid` seen during the run, bytes (0 without a pid). */
  readonly peakRss: number;
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

/** Runs both load processes against `port` and samples `rss` (the route's resident set) while they run. */
export async function loadedScenario(port: number, sni: string, options: LoadedOptions, rss: () => number): Promise<LoadedResult> {
  const start = (role: string, n: number) =>
    Bun.spawn([process.execPath, CHILD, role, String(port), sni, String(n), String(options.warmupMs), String(options.measureMs), String(options.window)], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
  const streams = start("streams", options.streams);
  const probe = start("probe", options.intervalMs);
  const fromStreams = lineReader(streams.stdout);
  const fromProbe = lineReader(probe.stdout);
  try {
    if ((await fromStreams()) !== "connected" || (await fromProbe()) !== "connected") throw new Error("load processes did not start");
    let peakRss = rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rss())), 100);
    streams.stdin.write("go\n");
    probe.stdin.write("go\n");
    streams.stdin.flush();
    probe.stdin.flush();
    const probed = JSON.parse(await fromProbe()) as ProbeResult;
    streams.stdin.write("stop\n");
    streams.stdin.flush();
    const streamed = JSON.parse(await fromStreams()) as StreamsResult;
    clearInterval(sampler);
    return { throughput: streamed.bytes / 1e6 / streamed.seconds, probe: probed, streamsFailed: streamed.failed, peakRss };
  } finally {
    streams.kill("SIGKILL");
    probe.kill("SIGKILL");
    await Promise.all([streams.exited, probe.exited]);
  }
}

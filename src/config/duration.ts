// Durations in Go syntax (`300s`, `1m30s`, `250ms`, `1h`) or a bare integer meaning milliseconds.
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const BARE_INTEGER = /^\d+$/;
const GO_DURATION = /^(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))*$/;
const GO_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g;

/** Milliseconds, or undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (BARE_INTEGER.test(text)) return Number(text);
  if (!GO_DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, value, unit] of text.matchAll(GO_PART)) total += Number(value) * (UNIT_MS[unit as string] ?? 0);
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** A duration for logs: in its largest whole unit, e.g. `300s`, `250ms`, `2m`. */
export function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

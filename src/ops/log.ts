// Logger: plain lines for people or flat JSON objects for machines, on stderr; built in main.ts and passed in.
export type Level = "debug" | "info" | "warn" | "error";
export type FieldValue = string | number | boolean | null | undefined;
export type Fields = Readonly<Record<string, FieldValue>>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  enabled(level: Level): boolean;
  /** Writes out lines still batched for this tick (call before exiting). */
  flush(): void;
}

export interface LoggerOptions {
  readonly format: "plain" | "json";
  readonly level: Level;
  readonly write?: (line: string) => void;
  readonly now?: () => Date;
}

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** Printable ASCII but for space, quote, equals and backslash: written bare in a plain line. */
const PLAIN_SAFE = /^[\x21\x23-\x3c\x3e-\x5b\x5d-\x7e]+$/;
/** What JSON.stringify leaves as it is but a terminal or a log viewer may act on: DEL, C1 controls, everything non-ASCII. */
const NOT_ASCII = /[\u007f-\uffff]/;
const EVERY_NOT_ASCII = new RegExp(NOT_ASCII.source, "g");

/**
 * A line holds printable ASCII only: values from the wire (an SNI, a cloudflared line) cannot move a cursor, forge a
 * line break or hide text in a plain line, and stay valid JSON in a JSON line.
 */
function asciiOnly(line: string): string {
  if (!NOT_ASCII.test(line)) return line;
  return line.replace(EVERY_NOT_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function plainValue(value: Exclude<FieldValue, undefined>): string {
  const text = String(value);
  return PLAIN_SAFE.test(text) ? text : JSON.stringify(text);
}

function formatPlain(ts: string, level: Level, msg: string, fields: Fields): string {
  let line = `${ts} ${level.toUpperCase().padEnd(5)} ${msg}`;
  for (const key in fields) {
    const value = fields[key];
    if (value !== undefined) line += ` ${plainValue(key)}=${plainValue(value)}`;
  }
  return line + "\n";
}

function formatJson(ts: string, level: Level, msg: string, fields: Fields): string {
  const record: Record<string, FieldValue> = { ts, level, msg };
  for (const key in fields) {
    if (fields[key] !== undefined && !(key in record)) record[key] = fields[key];
  }
  return JSON.stringify(record) + "\n";
}

/** Writes up to this size reach a pipe whole (POSIX PIPE_BUF), so lines from several edge threads never interleave. */
const ATOMIC_WRITE = 4096;

/**
 * Lines written in one tick go out together: under load (a summary line per connection) that is one write per
 * event-loop turn instead of one per connection, cut at line boundaries into writes that stay atomic.
 */
function batchedStderr(): { write: (line: string) => void; flush: () => void } {
  let pending = "";
  const flush = () => {
    while (pending !== "") {
      let cut = pending.length;
      if (cut > ATOMIC_WRITE) {
        const end = pending.lastIndexOf("\n", ATOMIC_WRITE - 1);
        cut = end < 0 ? pending.indexOf("\n") + 1 || pending.length : end + 1;
      }
      process.stderr.write(pending.slice(0, cut));
      pending = pending.slice(cut);
    }
  };
  return {
    write(line) {
      if (pending === "") setImmediate(flush);
      pending += line;
    },
    flush,
  };
}

export function createLogger(options: LoggerOptions): Logger {
  const threshold = RANK[options.level];
  const sink = options.write === undefined ? batchedStderr() : { write: options.write, flush: () => undefined };
  const write = sink.write;
  const now = options.now ?? (() => new Date());
  const format = options.format === "json" ? formatJson : formatPlain;
  const emit = (level: Level) => (msg: string, fields: Fields = {}) => {
    if (RANK[level] < threshold) return;
    write(asciiOnly(format(now().toISOString(), level, msg, fields)));
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    enabled: (level) => RANK[level] >= threshold,
    flush: sink.flush,
  };
}

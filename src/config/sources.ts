// Where each raw option value comes from: a flag (node:util parseArgs), else its environment variable, else the default.
import { parseArgs } from "node:util";
import * as v from "valibot";
import { ProxyError } from "../errors.ts";
import { OPTIONS, type OptionKey } from "./options.ts";

export type Environment = Readonly<Record<string, string | undefined>>;
export type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** A value as text and where it came from, for error messages: `--flag`, `VARIABLE` or `default of --flag`. */
export interface Raw {
  readonly value: string;
  readonly source: string;
}

type ArgOptions = Record<string, { type: "string" | "boolean"; multiple?: boolean }>;

export function fail(source: string, value: string, expected: string): never {
  throw new ProxyError("config_invalid", `invalid ${source} ${JSON.stringify(value)}: expected ${expected}`);
}

export function readFlags(argv: readonly string[]): Flags {
  const options: ArgOptions = { help: { type: "boolean" }, version: { type: "boolean" } };
  for (const spec of Object.values(OPTIONS)) options[spec.flag] = { type: spec.metavar === "" ? "boolean" : "string" };
  options["cloudflared-arg"] = { type: "string", multiple: true };
  try {
    return parseArgs({ args: joinValues(argv, options), options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const reason = (error as Error).message.split("\n")[0] ?? String(error);
    throw new ProxyError("config_invalid", `invalid command line: ${reason} (see --help)`);
  }
}

/**
 * `--flag value` becomes `--flag=value` for string flags, so values that start with a dash (`--cloudflared-arg --loglevel`,
 * `--max-restarts -1`) reach validation instead of being mistaken for flags.
 */
function joinValues(argv: readonly string[], options: ArgOptions): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (arg.startsWith("--") && options[arg.slice(2)]?.type === "string" && next !== undefined) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

export function pick(flags: Flags, env: Environment, key: OptionKey): Raw | undefined {
  const spec = OPTIONS[key];
  const flag = flags[spec.flag];
  if (typeof flag === "string") return { value: flag, source: `--${spec.flag}` };
  if (flag === true) return { value: "true", source: `--${spec.flag}` };
  const fromEnv = env[spec.env];
  if (fromEnv !== undefined && fromEnv !== "") return { value: fromEnv, source: spec.env };
  return spec.fallback === undefined ? undefined : { value: spec.fallback, source: `default of --${spec.flag}` };
}

export function validate<K extends OptionKey>(key: K, raw: Raw): v.InferOutput<(typeof OPTIONS)[K]["schema"]> {
  const spec = OPTIONS[key];
  const result = v.safeParse(spec.schema, raw.value);
  if (!result.success) {
    const shown = "shown" in spec && spec.shown !== undefined ? spec.shown(raw.value) : raw.value;
    fail(raw.source, shown, typeof spec.expected === "string" ? spec.expected : spec.expected(raw.value));
  }
  return result.output as v.InferOutput<(typeof OPTIONS)[K]["schema"]>;
}

/**
 * `--cloudflared-arg` values are one argv element each, spaces included (`--origin-ca-pool=/etc/ca dir/p.pem`); only
 * the CLOUDFLARED_ARGS variable, which cannot hold a list, is split on spaces.
 */
export function cloudflaredArgs(flags: Flags, env: Environment): string[] {
  const values = flags["cloudflared-arg"];
  if (!Array.isArray(values)) return validate("cloudflaredArgs", pick(flags, env, "cloudflaredArgs") as Raw);
  return values.map((value) => {
    if (typeof value !== "string" || value === "") fail("--cloudflared-arg", String(value), "a non-empty argument");
    return value;
  });
}

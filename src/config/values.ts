// Value parsers for the option table: text → typed value (or undefined), wrapped as valibot schemas.
import * as v from "valibot";
import { isIP } from "node:net";
import { parseDuration } from "./duration.ts";
import { isValidHostname } from "../protocol/hostname.ts";

export type Schema<T> = v.GenericSchema<string, T>;

export function parsed<T>(parse: (text: string) => T | undefined): Schema<T> {
  return v.pipe(
    v.string(),
    v.check((text) => parse(text) !== undefined),
    v.transform((text) => parse(text) as T),
  );
}

export const duration = parsed(parseDuration);

/** For timers where 0 would make no sense (a hello timeout of 0 closes every client at once). */
export const positiveDuration = parsed((text) => {
  const ms = parseDuration(text);
  return ms !== undefined && ms > 0 ? ms : undefined;
});

/** A whole number from `min` to `max`, decimal digits only. */
export const count = (min: number, max = 999_999_999) =>
  parsed((text) => (/^\d{1,9}$/.test(text) && Number(text) >= min && Number(text) <= max ? Number(text) : undefined));

export const oneOf = <const T extends string>(values: readonly T[]) => parsed((text) => values.find((value) => value === text));

/** `true`/`1` or `false`/`0`, as systemd units and shells write switches. */
export const flagSwitch = parsed((text) => (text === "true" || text === "1" ? true : text === "false" || text === "0" ? false : undefined));

/** Comma-separated entries, spaces around them ignored, empty entries dropped. */
export function list(text: string): string[] {
  return text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}

/** Tunnel hostnames (`--warm`): lower-cased, duplicates dropped, order kept. */
export function hostnameList(text: string): string[] {
  return [...new Set(list(text).map((entry) => entry.toLowerCase()))];
}

export function firstInvalidHostname(text: string): string | undefined {
  return hostnameList(text).find((name) => !isValidHostname(name));
}

const SUFFIX = /^\.?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * `--allow-sni-suffix`: "unset" (no value: any SNI, refused at start with a service token), "any" (the explicit open
 * choice) or a list of suffixes.
 */
export type SniAllowlist = { readonly mode: "unset" | "any" } | { readonly mode: "list"; readonly suffixes: readonly string[] };

export function parseAllowlist(text: string): SniAllowlist | undefined {
  const entries = list(text);
  if (entries.length === 0) return { mode: "unset" };
  const any = entries.filter((entry) => entry.toLowerCase() === "any").length;
  if (any > 0) return any === entries.length && any === 1 ? { mode: "any" } : undefined;
  return entries.every((entry) => SUFFIX.test(entry)) ? { mode: "list", suffixes: entries } : undefined;
}

const CIDR = /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/;

function isCidr(entry: string): boolean {
  const match = CIDR.exec(entry);
  if (!match) return false;
  const family = isIP(match[1] as string);
  if (family === 0) return false;
  return match[2] === undefined || Number(match[2]) <= (family === 4 ? 32 : 128);
}

export type TrustedProxies = { readonly any: true } | { readonly any: false; readonly entries: readonly string[] };

export function parseTrusted(text: string): TrustedProxies | undefined {
  const entries = list(text);
  if (entries.length === 1 && entries[0] === "any") return { any: true };
  return entries.every(isCidr) ? { any: false, entries } : undefined;
}

export function parseRange(text: string): { start: number; end: number } | undefined {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  return match ? { start: Number(match[1]), end: Number(match[2]) } : undefined;
}

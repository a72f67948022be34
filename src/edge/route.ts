// Routing: SNI normalisation, DNS hostname validation, the suffix allow list and the hostname template.
export const MAX_HOSTNAME_LENGTH = 253;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export type RouteResult =
  | { readonly kind: "ok"; readonly sni: string; readonly hostname: string }
  | { readonly kind: "invalid_sni" | "not_allowed" | "invalid_hostname"; readonly sni: string };

/** True for a lower-case DNS hostname of at least two labels, each 1–63 of `[a-z0-9-]` not starting or ending with `-`. */
export function isValidHostname(name: string): boolean {
  if (name.length === 0 || name.length > MAX_HOSTNAME_LENGTH) return false;
  const labels = name.split(".");
  if (labels.length < 2) return false;
  return labels.every((label) => LABEL.test(label));
}

/** Lower-case and strip one trailing dot; undefined when the result is not a valid hostname. */
export function normaliseSni(raw: string): string | undefined {
  const lower = raw.toLowerCase();
  const name = lower.endsWith(".") ? lower.slice(0, -1) : lower;
  return isValidHostname(name) ? name : undefined;
}

/** Suffix entries without their leading dot; `good.test` matches `good.test` and `*.good.test`. */
export function normaliseSuffixes(entries: readonly string[]): string[] {
  return entries.map((entry) => entry.toLowerCase().replace(/^\./, ""));
}

export function isAllowed(name: string, suffixes: readonly string[]): boolean {
  if (suffixes.length === 0) return true;
  return suffixes.some((suffix) => name === suffix || name.endsWith("." + suffix));
}

const PLACEHOLDER = /\{(sni|first|rest)\}/g;

export function renderTemplate(template: string, sni: string): string {
  const dot = sni.indexOf(".");
  const first = sni.slice(0, dot);
  const rest = sni.slice(dot + 1);
  return template.replace(PLACEHOLDER, (_, name: string) => (name === "sni" ? sni : name === "first" ? first : rest));
}

/** A template is usable when it renders a valid hostname for a typical SNI and has no stray braces. */
export function isValidTemplate(template: string): boolean {
  if (/[{}]/.test(template.replace(PLACEHOLDER, ""))) return false;
  return isValidHostname(renderTemplate(template, "db-1.example.test"));
}

export function route(rawSni: string, suffixes: readonly string[], template: string): RouteResult {
  const sni = normaliseSni(rawSni);
  if (sni === undefined) return { kind: "invalid_sni", sni: rawSni };
  if (!isAllowed(sni, suffixes)) return { kind: "not_allowed", sni };
  const hostname = renderTemplate(template, sni);
  if (!isValidHostname(hostname)) return { kind: "invalid_hostname", sni };
  return { kind: "ok", sni, hostname };
}

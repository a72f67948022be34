// Hostname rules shared by configuration and routing: DNS hostname validation, the suffix allow list, the template.
export const MAX_HOSTNAME_LENGTH = 253;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** True for a lower-case DNS hostname of at least two labels, each 1–63 of `[a-z0-9-]` not starting or ending with `-`. */
export function isValidHostname(name: string): boolean {
  if (name.length === 0 || name.length > MAX_HOSTNAME_LENGTH) return false;
  const labels = name.split(".");
  if (labels.length < 2) return false;
  return labels.every((label) => LABEL.test(label));
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

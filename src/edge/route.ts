// Routing: from a raw SNI to the tunnel hostname, using the hostname rules of protocol/hostname.ts.
import { isAllowed, isValidHostname, renderTemplate } from "../protocol/hostname.ts";

export type RouteResult =
  | { readonly kind: "ok"; readonly sni: string; readonly hostname: string }
  | { readonly kind: "invalid_sni" | "not_allowed" | "invalid_hostname"; readonly sni: string };

/** Lower-case and strip one trailing dot; undefined when the result is not a valid hostname. */
export function normaliseSni(raw: string): string | undefined {
  const lower = raw.toLowerCase();
  const name = lower.endsWith(".") ? lower.slice(0, -1) : lower;
  return isValidHostname(name) ? name : undefined;
}

export function route(rawSni: string, suffixes: readonly string[], template: string): RouteResult {
  const sni = normaliseSni(rawSni);
  if (sni === undefined) return { kind: "invalid_sni", sni: rawSni };
  if (!isAllowed(sni, suffixes)) return { kind: "not_allowed", sni };
  const hostname = renderTemplate(template, sni);
  if (!isValidHostname(hostname)) return { kind: "invalid_hostname", sni };
  return { kind: "ok", sni, hostname };
}

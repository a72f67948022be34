// Secrets in the configuration: whether a Cloudflare Access credential reaches the tunnels, cloudflared arguments with
// every secret value hidden, and a redactor for any line (cloudflared's own output) that might quote one.
import type { Environment } from "./sources.ts";

const TOKEN_VARIABLES = ["TUNNEL_SERVICE_TOKEN_ID", "TUNNEL_SERVICE_TOKEN_SECRET"];
/** cloudflared's service token flags, long and short (`access tcp --help`). */
const TOKEN_FLAGS = ["service-token-id", "service-token-secret", "id", "secret"];
/** `--header`/`-H NAME: VALUE`: a header that carries Access credentials (or any Authorization) is a token too. */
const HEADER_FLAGS = ["header", "h"];
const CREDENTIAL_HEADER = /^\s*(cf-access-[a-z-]*|authorization)\s*:/i;
/** A flag value is a secret when the flag's name says so. */
const SECRET_NAME = /secret|token|password|^id$/i;
/** `-name`, `--name` or either with `=value` (cloudflared's flag parser takes one or two dashes). */
const FLAG = /^--?([A-Za-z0-9][A-Za-z0-9_-]*)(=.*)?$/s;
export const HIDDEN = "***";
/** A header line quoting a credential (cloudflared prints its requests at debug level): its value is hidden. */
const CREDENTIAL_LINE = /((?:cf-access-[a-z-]*|authorization|cookie)\s*[:=]\s*)("?)[^\s",]+/gi;

/** The flags and their values, one pair per flag, whether written `--flag=value` or `--flag value`. */
function flagsOf(args: readonly string[]): { name: string; value: string | undefined; inline: boolean; at: number }[] {
  const flags = [];
  for (let i = 0; i < args.length; i++) {
    const match = FLAG.exec(args[i] as string);
    if (match === null) continue;
    const inline = match[2] !== undefined;
    flags.push({ name: (match[1] as string).toLowerCase(), value: inline ? (match[2] as string).slice(1) : args[i + 1], inline, at: i });
  }
  return flags;
}

const isCredentialHeader = (flag: { name: string; value: string | undefined }) => HEADER_FLAGS.includes(flag.name) && CREDENTIAL_HEADER.test(flag.value ?? "");

/**
 * cloudflared sends a service token as `Cf-Access-Client-Id`/`-Secret` headers to whatever hostname it tunnels to, so
 * with one configured the hostnames must be limited. Tunnels inherit the proxy's environment, or get the token among
 * the extra arguments: `--service-token-id`/`--id`, `--service-token-secret`/`--secret`, or a `--header`/`-H` naming an
 * Access header or Authorization.
 */
export function serviceTokenConfigured(env: Environment, cloudflaredArgs: readonly string[]): boolean {
  if (TOKEN_VARIABLES.some((name) => (env[name] ?? "") !== "")) return true;
  return flagsOf(cloudflaredArgs).some((flag) => TOKEN_FLAGS.includes(flag.name) || isCredentialHeader(flag));
}

/** The arguments with every secret value replaced by `***`: secret-named flags' values, credential headers' values. */
export function redactArgs(args: readonly string[]): string[] {
  const out = [...args];
  for (const flag of flagsOf(args)) {
    const header = isCredentialHeader(flag);
    if (!header && !SECRET_NAME.test(flag.name)) continue;
    const hidden = header ? `${(flag.value as string).slice(0, (flag.value as string).indexOf(":") + 1)} ${HIDDEN}` : HIDDEN;
    if (flag.inline) out[flag.at] = `${(args[flag.at] as string).slice(0, (args[flag.at] as string).indexOf("="))}=${hidden}`;
    else if (flag.at + 1 < out.length) out[flag.at + 1] = hidden;
  }
  return out;
}

/** Every secret value the configuration hands cloudflared: token variables, secret-named and header argument values. */
export function secretValues(env: Environment, cloudflaredArgs: readonly string[]): string[] {
  const values = TOKEN_VARIABLES.map((name) => env[name] ?? "");
  for (const flag of flagsOf(cloudflaredArgs)) {
    if (isCredentialHeader(flag)) values.push((flag.value as string).slice((flag.value as string).indexOf(":") + 1).trim());
    else if (SECRET_NAME.test(flag.name) && flag.value !== undefined) values.push(flag.value);
  }
  return [...new Set(values.filter((value) => value.length >= 4))];
}

/**
 * A line with every known secret value and every credential header's value replaced by `***`: cloudflared at debug
 * level prints the requests it sends, headers included.
 */
export function redactor(secrets: readonly string[]): (line: string) => string {
  return (line) => {
    let out = line.replace(CREDENTIAL_LINE, `$1$2${HIDDEN}`);
    for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(HIDDEN);
    return out;
  };
}

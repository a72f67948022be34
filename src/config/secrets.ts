// Secrets in the configuration: whether a Cloudflare Access service token reaches the tunnels, and cloudflared
// arguments with every secret value hidden, for the log.
import type { Environment } from "./sources.ts";

const TOKEN_VARIABLES = ["TUNNEL_SERVICE_TOKEN_ID", "TUNNEL_SERVICE_TOKEN_SECRET"];
const TOKEN_FLAGS = ["service-token-id", "service-token-secret"];
/** A flag value is a secret when the flag's name says so. */
const SECRET_NAME = /secret|token|password/i;
/** `-name`, `--name` or either with `=value` (cloudflared's flag parser takes one or two dashes). */
const FLAG = /^--?([A-Za-z0-9][A-Za-z0-9_-]*)(=.*)?$/s;
export const HIDDEN = "***";

/**
 * cloudflared sends a service token as `Cf-Access-Client-Id`/`-Secret` headers to whatever hostname it tunnels to, so
 * with one configured the hostnames must be limited. Tunnels inherit the proxy's environment, or get the token as
 * `--service-token-id`/`--service-token-secret` among the extra arguments.
 */
export function serviceTokenConfigured(env: Environment, cloudflaredArgs: readonly string[]): boolean {
  if (TOKEN_VARIABLES.some((name) => (env[name] ?? "") !== "")) return true;
  return cloudflaredArgs.some((arg) => {
    const name = FLAG.exec(arg)?.[1];
    return name !== undefined && TOKEN_FLAGS.includes(name.toLowerCase());
  });
}

/** The arguments with the value of every flag whose name contains secret, token or password replaced by `***`. */
export function redactArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let hideNext = false;
  for (const arg of args) {
    if (hideNext) {
      out.push(HIDDEN);
      hideNext = false;
      continue;
    }
    const flag = FLAG.exec(arg);
    if (flag === null || !SECRET_NAME.test(flag[1] as string)) {
      out.push(arg);
      continue;
    }
    if (flag[2] === undefined) {
      out.push(arg);
      hideNext = true;
    } else out.push(`${arg.slice(0, arg.indexOf("="))}=${HIDDEN}`);
  }
  return out;
}

// `--help`: every flag with its environment variable and default, generated from the option table.
import { OPTIONS } from "./options.ts";

const USAGE = `tcp-tunnel-proxy: routes TLS connections by SNI to on-demand "cloudflared access tcp" tunnels.

Usage: tcp-tunnel-proxy [flags]

Flags override environment variables, which override defaults. Durations: 300s, 1m30s, 250ms, or bare milliseconds.
`;

const NOTES = `
Notes:
  --send-proxy makes every backend connection start with a PROXY header; a backend that does not speak PROXY
  (a plain PostgreSQL server, for one) will answer the SSLRequest with garbage and the connection is closed.
  --trusted-proxies is required for clients that send a PROXY header (load balancers); without it they are refused.
`;

export function helpText(): string {
  const rows: string[] = [];
  const seen = new Set<string>();
  for (const spec of Object.values(OPTIONS)) {
    if (seen.has(spec.flag)) continue;
    seen.add(spec.flag);
    const fallback = spec.flag === "port-range" ? "20000-20100" : spec.fallback === undefined ? "" : spec.fallback;
    const shown = fallback === "" ? defaultWord(spec.flag) : fallback;
    rows.push(spec.metavar === "" ? `  --${spec.flag}` : `  --${spec.flag} ${spec.metavar}`);
    rows.push(`      ${spec.help}`);
    rows.push(`      env ${spec.env}${spec.metavar === "" ? " (true or false)" : ""}; default ${shown}`);
  }
  rows.push("  --help", "      print this help", "  --version", "      print the version");
  return `${USAGE}\n${rows.join("\n")}\n${NOTES}`;
}

function defaultWord(flag: string): string {
  switch (flag) {
    case "max-tunnels":
      return "size of the port range";
    case "trusted-proxies":
      return "none (PROXY headers refused)";
    case "metrics-listen":
      return "off";
    case "allow-sni-suffix":
      return "unset (any SNI; refused at start with a service token)";
    case "node-id":
      return "<hostname>:<listen port>";
    case "fleet-redis":
      return "off";
    default:
      return "none";
  }
}

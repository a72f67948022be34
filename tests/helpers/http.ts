// A raw HTTP/1.1 request over a TCP socket, so a test controls every header (Host and Origin included), as a browser
// led by DNS rebinding or a hostile page would send them.
import { connect } from "node:net";
import { within } from "./deadline.ts";

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export function rawHttp(port: number, method: string, path: string, headers: Record<string, string>, deadlineMs = 30_000): Promise<RawResponse> {
  const lines = [`${method} ${path} HTTP/1.1`, ...Object.entries({ connection: "close", ...headers }).map(([k, v]) => `${k}: ${v}`), "", ""];
  const answer = new Promise<RawResponse>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(lines.join("\r\n")));
    const parts: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => parts.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(parts).toString("latin1");
      const [head = "", ...rest] = text.split("\r\n\r\n");
      const [statusLine = "", ...headerLines] = head.split("\r\n");
      const status = Number(statusLine.split(" ")[1]);
      if (!Number.isInteger(status)) return reject(new Error(`no HTTP answer (${JSON.stringify(text.slice(0, 80))})`));
      const parsed = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
      resolve({ status, headers: parsed, body: rest.join("\r\n\r\n") });
    });
  });
  return within(deadlineMs, answer, `the answer to ${method} ${path}`);
}

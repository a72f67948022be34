// GET / and GET /status on the admin server: the status page (status.html, embedded in the binary) and the JSON it
// renders. The page is served with a content security policy that lets only its own script and style run and keeps
// it out of other sites' frames, since its buttons start and stop tunnels.
import { createHash } from "node:crypto";
import pageText from "./status.html" with { type: "text" };

// Bun's types describe an imported .html file as a bundle for Bun.serve's routes; imported as text it is a string.
export const STATUS_PAGE: string = pageText as unknown as string;

function inlineHash(tag: "script" | "style"): string {
  const body = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(STATUS_PAGE)?.[1];
  if (body === undefined) throw new Error(`status.html has no <${tag}>`);
  return `'sha256-${createHash("sha256").update(body).digest("base64")}'`;
}

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": [
    "default-src 'none'",
    `script-src ${inlineHash("script")}`,
    `style-src ${inlineHash("style")}`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** The answer to GET / (the page) or GET /status (`read`'s document). */
export async function statusRoute(path: "/" | "/status", read: () => Promise<unknown>): Promise<Response> {
  if (path === "/") return new Response(STATUS_PAGE, { headers: PAGE_HEADERS });
  return Response.json(await read(), { headers: { "cache-control": "no-store" } });
}

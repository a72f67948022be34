// The status page as a file: small, self-contained (nothing loaded from elsewhere), API strings only ever set as
// text, and a content security policy whose hashes are those of its one script and one style.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { STATUS_PAGE, statusRoute } from "../../src/ops/status-page.ts";

const inline = (tag: string) => [...STATUS_PAGE.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1] as string);

test("at most 60 KB, and it loads nothing: no external script, style, image, font or frame", () => {
  expect(Buffer.byteLength(STATUS_PAGE)).toBeLessThanOrEqual(60 * 1024);
  expect(STATUS_PAGE).not.toMatch(/\b(src|href)=(?!"data:,")/);
  expect(STATUS_PAGE).not.toMatch(/@import|url\(|<iframe|<object|<embed|https?:\/\//i);
});

test("strings reach the page as text: no HTML parsing from script, no inline event handlers", () => {
  expect(STATUS_PAGE).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  expect(STATUS_PAGE).not.toMatch(/<[a-z]+[^>]*\son[a-z]+=/i);
});

test("the policy allows exactly the page's one script and one style, by hash", async () => {
  const [script, style] = [inline("script"), inline("style")];
  expect(script).toHaveLength(1);
  expect(style).toHaveLength(1);
  const policy = (await statusRoute("/", async () => null)).headers.get("content-security-policy") ?? "";
  const hash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
  expect(policy).toContain(`script-src ${hash(script[0] as string)};`);
  expect(policy).toContain(`style-src ${hash(style[0] as string)};`);
  expect(policy).toStartWith("default-src 'none';");
});

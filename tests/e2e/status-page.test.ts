// The status page at GET / in headless Chromium against the real binary: it renders /status, its buttons drive the
// tunnel API (pin, a refused stop, force), API errors show as text, and with a token file it asks for the token.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startProxy, type ProxyProcess } from "../helpers/proxy-process.ts";
import { adminGet } from "../helpers/admin.ts";
import { echoRoundTrip, rawConnect, readUntilClose } from "../helpers/clients.ts";
import { clientHello, records, unique } from "../helpers/builders.ts";
import { chromiumUnavailable, launchChromium, type Browser, type Page } from "../helpers/chromium.ts";
import { within } from "../helpers/deadline.ts";

const unavailable = chromiumUnavailable();
if (unavailable !== null) console.warn(`SKIPPED status page browser tests: ${unavailable}`);

test.if(unavailable !== null && process.env.CI === "true")("CI has chromium to test the status page in", () => {
  throw new Error(`the status page browser tests cannot run in CI: ${unavailable}`);
});

const SCREENSHOT = join(ROOT, "test-artifacts", "status-page.png");

/** A proxied client of `sni`, kept open once its hello has come back through the echo tunnel. */
async function client(proxy: ProxyProcess, sni: string) {
  const socket = await rawConnect(proxy.port);
  await within(5000, echoRoundTrip(socket, records(clientHello({ names: [sni] }))), `the echo through ${sni}`);
  return socket;
}

const row = (hostname: string) => `tr[data-host=${JSON.stringify(hostname)}]`;
const cell = (hostname: string, column: number) => `document.querySelector(${JSON.stringify(row(hostname))})?.children[${column}]?.textContent`;
const tunnelStatus = async (proxy: ProxyProcess, hostname: string) => (await adminGet(proxy.adminPort as number, `/tunnels/${hostname}`)).status;

describe.skipIf(unavailable !== null)("the status page in headless Chromium", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test("renders the proxy; pin, a refused stop and a forced one go through the API; errors show as text", async () => {
    const warm = `cft-w-${unique()}.page.test`;
    const sni = `db-${unique()}.page.test`;
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0", "--warm", warm]);
    await proxy.waitFor((l) => l.msg === "tunnel ready" && l.tunnel === warm);
    (await client(proxy, `gone-${unique()}.page.test`)).destroy();
    await proxy.waitFor((l) => l.msg === "connection" && l.outcome === "proxied");
    const held = await client(proxy, sni);
    const closed = readUntilClose(held);
    const page = await browser.newPage();
    await page.navigate(`http://127.0.0.1:${proxy.adminPort}/`);

    await page.waitFor(`${cell(`cft-${sni}`, 3)} === "1" && ${cell(warm, 2)} === "pinned"`, "both tunnels rendered");
    expect(await page.evaluate<boolean>(`document.getElementById("token-form").checkVisibility()`)).toBe(false);
    const status = (await (await adminGet(proxy.adminPort as number, "/status")).json()) as { node_id: string; version: string };
    expect(await page.evaluate<string>(`document.getElementById("node").textContent`)).toBe(status.node_id);
    expect(await page.evaluate<string>(`document.getElementById("version").textContent`)).toBe(status.version);
    expect(await page.evaluate<string>(`document.getElementById("connections").textContent`)).toBe("1");
    await page.waitFor(`[...document.querySelectorAll("#outcomes tr")].some((r) => r.textContent === "proxied11")`,
      "proxied counted since start and in the last minute");

    await page.click(`${row(`cft-${sni}`)} button[data-action="pin"]`);
    await page.waitFor(`${cell(`cft-${sni}`, 2)} === "pinned"`, "the tunnel shown pinned");
    expect(await (await adminGet(proxy.adminPort as number, `/tunnels/cft-${sni}`)).json()).toMatchObject({ pinned: true });

    await page.click(`${row(`cft-${sni}`)} button[data-action="stop"]`);
    await page.waitFor(`document.getElementById("error").checkVisibility()`, "the refused stop's error");
    expect(await page.evaluate<string>(`document.querySelector("#error .text").textContent`)).toContain("HTTP 409: tunnel");
    expect(await tunnelStatus(proxy, `cft-${sni}`)).toBe(200);
    await page.screenshot(SCREENSHOT);

    await page.click(`#error button.danger`);
    await within(5000, closed, "the forced stop closing the held client");
    await page.waitFor(`document.querySelector(${JSON.stringify(row(`cft-${sni}`))}) === null`, "the stopped tunnel's row gone");
    expect(await tunnelStatus(proxy, `cft-${sni}`)).toBe(404);

    const hostile = "<img src=x onerror=window.owned=1>";
    await page.type("#start-host", hostile);
    await page.click(`#start-form button[type="submit"]`);
    await page.waitFor(`document.querySelector("#error .text").textContent.includes("HTTP 400")`, "the refused start's error");
    expect(await page.evaluate<string>(`document.querySelector("#error .text").textContent`)).toContain(hostile.toLowerCase());
    expect(await page.evaluate<boolean>(`document.querySelector("main img") === null && window.owned === undefined`)).toBe(true);
    expect(page.problems).toEqual([]);
    await proxy.stop();
  });

  test("with --admin-token-file it asks for the token, asks again after a 401, and sends it as a bearer token", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ttp-token-"));
    const file = join(dir, "token");
    writeFileSync(file, "page-token-42\n");
    const tunnel = `cft-t-${unique()}.page.test`;
    const proxy = await startProxy(["--metrics-listen", "127.0.0.1:0", "--admin-token-file", file]);
    rmSync(dir, { recursive: true });
    const started = await fetch(`http://127.0.0.1:${proxy.adminPort}/tunnels/${tunnel}`, { method: "POST", headers: { authorization: "Bearer page-token-42" } });
    expect(started.status).toBe(200);
    const page: Page = await browser.newPage();
    await page.navigate(`http://127.0.0.1:${proxy.adminPort}/`);
    await page.waitFor(`${cell(tunnel, 2)} === "no" && document.getElementById("token-form").checkVisibility()`, "the tunnel and the token form");

    await page.type("#token", "wrong-token");
    await page.click(`#token-form button[type="submit"]`);
    await page.click(`${row(tunnel)} button[data-action="pin"]`);
    await page.waitFor(`document.getElementById("token-why").textContent.includes("HTTP 401")`, "the token asked for again");
    expect(await (await adminGet(proxy.adminPort as number, `/tunnels/${tunnel}`)).json()).toMatchObject({ pinned: false });

    await page.type("#token", "page-token-42");
    await page.click(`#token-form button[type="submit"]`);
    await page.waitFor(`${cell(tunnel, 2)} === "pinned"`, "the pin retried with the right token");
    expect(await (await adminGet(proxy.adminPort as number, `/tunnels/${tunnel}`)).json()).toMatchObject({ pinned: true });
    expect(page.problems).toEqual([]);
    await proxy.stop();
  });
});

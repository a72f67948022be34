// Headless Chromium driven over the DevTools protocol (Bun's own WebSocket, no dependency), for tests of the status
// page in a real browser: navigate, wait for the DOM, click with real mouse events, type, screenshot.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { within } from "./deadline.ts";

export const CHROMIUM = "/usr/bin/chromium";

export function chromiumUnavailable(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} not found (apt-get install chromium)`;
}

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--remote-debugging-port=0"];
const SETPRIV = Bun.which("setpriv");
const WAIT_MS = 10_000;

type Message = { id?: number; method?: string; params?: Record<string, unknown>; sessionId?: string; result?: unknown; error?: { message: string } };

export interface Page {
  /** Page errors so far: uncaught exceptions, console errors, and what the browser refused (content security policy). */
  readonly problems: string[];
  navigate(url: string): Promise<void>;
  evaluate<T>(expression: string): Promise<T>;
  /** Resolves once `condition` (a page expression) is true: checked now and after every change of the DOM. */
  waitFor(condition: string, what: string, ms?: number): Promise<void>;
  /** A real left click (mouse events) at the centre of the first element matching `selector`. */
  click(selector: string): Promise<void>;
  /** Clicks the field, then types `text` into it. */
  type(selector: string, text: string): Promise<void>;
  screenshot(path: string): Promise<void>;
}

export interface Browser {
  newPage(width?: number, height?: number): Promise<Page>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "ttp-chromium-"));
  const argv = [...(SETPRIV === null ? [] : [SETPRIV, "--pdeathsig", "SIGKILL", "--"]), CHROMIUM, ...FLAGS, `--user-data-dir=${profile}`, "about:blank"];
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  process.on("exit", () => proc.kill("SIGKILL"));
  const endpoint = await within(WAIT_MS, devtoolsEndpoint(proc.stderr), "chromium's DevTools endpoint");
  const socket = new WebSocket(endpoint);
  await within(WAIT_MS, new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`cannot connect to ${endpoint}`));
  }), "the DevTools connection");

  let nextId = 0;
  const replies = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  const listeners = new Set<(message: Message) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as Message;
    const reply = message.id === undefined ? undefined : replies.get(message.id);
    if (reply !== undefined) {
      replies.delete(message.id as number);
      if (message.error) reply.reject(new Error(message.error.message));
      else reply.resolve(message.result);
    } else for (const listener of listeners) listener(message);
  };
  const send = <T>(method: string, params: Record<string, unknown> = {}, sessionId?: string, ms = WAIT_MS): Promise<T> => {
    const id = ++nextId;
    socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return within(ms, new Promise<T>((resolve, reject) => replies.set(id, { resolve: resolve as (v: unknown) => void, reject })), method);
  };

  return {
    async newPage(width = 1400, height = 1000) {
      const { targetId } = await send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await send<{ sessionId: string }>("Target.attachToTarget", { targetId, flatten: true });
      return openPage((method, params, ms) => send(method, params, sessionId, ms), listeners, sessionId, width, height);
    },
    async close() {
      await send("Browser.close").catch(() => undefined);
      socket.close();
      if (proc.exitCode === null) await within(WAIT_MS, proc.exited, "chromium's exit").catch(() => proc.kill("SIGKILL"));
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The browser's WebSocket address from its stderr, which is then read on to the end so a full pipe never blocks it. */
async function devtoolsEndpoint(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stderr.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`chromium exited before listening:\n${text}`);
    text += decoder.decode(value, { stream: true });
    const match = /DevTools listening on (ws:\/\/\S+)/.exec(text);
    if (match === null) continue;
    void (async () => {
      while (!(await reader.read()).done) continue;
    })();
    return match[1] as string;
  }
}

type Send = <T>(method: string, params?: Record<string, unknown>, ms?: number) => Promise<T>;

async function openPage(send: Send, listeners: Set<(m: Message) => void>, sessionId: string, width: number, height: number): Promise<Page> {
  const problems: string[] = [];
  let loaded: (() => void) | null = null;
  listeners.add((message) => {
    if (message.sessionId !== sessionId) return;
    const params = message.params ?? {};
    if (message.method === "Page.loadEventFired") loaded?.();
    if (message.method === "Runtime.exceptionThrown") problems.push(`exception: ${JSON.stringify(params.exceptionDetails)}`);
    if (message.method === "Log.entryAdded") {
      // "network" entries are the API's own error answers (a 409, a 401), which the page is there to show.
      const entry = params.entry as { level: string; source: string; text: string };
      if (entry.level === "error" && entry.source !== "network") problems.push(`log: ${entry.source}: ${entry.text}`);
    }
    if (message.method === "Runtime.consoleAPICalled" && params.type === "error") problems.push(`console: ${JSON.stringify(params.args)}`);
  });
  await Promise.all(["Page.enable", "Runtime.enable", "Log.enable"].map((method) => send(method)));
  await send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });

  const evaluate = async <T>(expression: string, ms = WAIT_MS): Promise<T> => {
    const params = { expression, awaitPromise: true, returnByValue: true };
    const reply = await send<{ result: { value?: T }; exceptionDetails?: unknown }>("Runtime.evaluate", params, ms);
    if (reply.exceptionDetails !== undefined) throw new Error(`page threw evaluating ${expression}: ${JSON.stringify(reply.exceptionDetails)}`);
    return reply.result.value as T;
  };
  const centre = async (selector: string): Promise<[number, number]> => {
    const point = await evaluate<[number, number] | null>(`(() => {
      const node = document.querySelector(${JSON.stringify(selector)});
      if (!node) return null;
      node.scrollIntoView({ block: "center" });
      const box = node.getBoundingClientRect();
      return [box.x + box.width / 2, box.y + box.height / 2];
    })()`);
    if (point === null) throw new Error(`no element matches ${selector}`);
    return point;
  };
  const click = async (selector: string) => {
    const [x, y] = await centre(selector);
    await send("Input.dispatchMouseEvent", { type: "mouseMoved", x, y });
    await send("Input.dispatchMouseEvent", { type: "mousePressed", x, y, button: "left", clickCount: 1 });
    await send("Input.dispatchMouseEvent", { type: "mouseReleased", x, y, button: "left", clickCount: 1 });
  };

  return {
    problems,
    async navigate(url) {
      const done = new Promise<void>((resolve) => (loaded = resolve));
      await send("Page.navigate", { url });
      await within(WAIT_MS, done, `the load of ${url}`);
    },
    evaluate: (expression) => evaluate(expression),
    async waitFor(condition, what, ms = WAIT_MS) {
      const watch = evaluate<boolean>(`new Promise((resolve) => {
        const test = () => { try { return Boolean(${condition}); } catch { return false; } };
        if (test()) return resolve(true);
        const observer = new MutationObserver(() => { if (test()) { observer.disconnect(); resolve(true); } });
        observer.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
      })`, ms + WAIT_MS);
      await within(ms, watch, what);
    },
    click,
    async type(selector, text) {
      await click(selector);
      await send("Input.insertText", { text });
    },
    async screenshot(path) {
      const { data } = await send<{ data: string }>("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, Buffer.from(data, "base64"));
    },
  };
}

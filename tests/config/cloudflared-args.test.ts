import { expect, test } from "bun:test";
import { errorOf, load } from "./loading.ts";

test("each --cloudflared-arg value is exactly one argv element, spaces included", () => {
  const config = load(["--cloudflared-arg", "--origin-ca-pool=/etc/ca dir/p.pem", "--cloudflared-arg", "--loglevel", "--cloudflared-arg", "debug"]);
  expect(config.cloudflaredArgs).toEqual(["--origin-ca-pool=/etc/ca dir/p.pem", "--loglevel", "debug"]);
});

test("the = form and leading or doubled spaces are kept as written", () => {
  expect(load(["--cloudflared-arg=--name=a  b", "--cloudflared-arg", " x"]).cloudflaredArgs).toEqual(["--name=a  b", " x"]);
});

test("CLOUDFLARED_ARGS is split on spaces", () => {
  expect(load([], { CLOUDFLARED_ARGS: "--loglevel  debug --no-autoupdate" }).cloudflaredArgs).toEqual(["--loglevel", "debug", "--no-autoupdate"]);
});

test("--cloudflared-arg replaces CLOUDFLARED_ARGS entirely", () => {
  const config = load(["--cloudflared-arg", "--loglevel", "--cloudflared-arg", "info"], { CLOUDFLARED_ARGS: "--x y" });
  expect(config.cloudflaredArgs).toEqual(["--loglevel", "info"]);
});

test("an empty --cloudflared-arg is refused", () => {
  expect(errorOf(["--cloudflared-arg", ""])).toBe('invalid --cloudflared-arg "": expected a non-empty argument');
});

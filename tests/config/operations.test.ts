import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorOf, load } from "./loading.ts";

describe("--cancel-fanout / CANCEL_FANOUT", () => {
  test("a whole number >= 0; 0 refuses plaintext cancels", () => {
    expect(load(["--cancel-fanout", "0"]).cancelFanout).toBe(0);
    expect(load([], { CANCEL_FANOUT: "12" }).cancelFanout).toBe(12);
    expect(load(["--cancel-fanout", "2"], { CANCEL_FANOUT: "12" }).cancelFanout).toBe(2);
  });

  test.each(["-1", "1.5", "four", " 4"])("%p is refused", (value) => {
    expect(errorOf(["--cancel-fanout", value])).toBe(`invalid --cancel-fanout ${JSON.stringify(value)}: expected a whole number >= 0`);
    expect(errorOf([], { CANCEL_FANOUT: value })).toStartWith(`invalid CANCEL_FANOUT ${JSON.stringify(value)}`);
  });
});

describe("--reuse-port / REUSE_PORT", () => {
  test("the flag takes no value and wins over the variable", () => {
    expect(load(["--reuse-port"]).reusePort).toBe(true);
    expect(load(["--reuse-port"], { REUSE_PORT: "false" }).reusePort).toBe(true);
    expect(load(["--reuse-port", "--workers", "1"]).workers).toBe(1);
  });

  test.each([
    ["true", true],
    ["1", true],
    ["false", false],
    ["0", false],
  ] as const)("REUSE_PORT=%s", (value, expected) => {
    expect(load([], { REUSE_PORT: value }).reusePort).toBe(expected);
  });

  test("anything else is refused", () => {
    expect(errorOf([], { REUSE_PORT: "yes" })).toBe('invalid REUSE_PORT "yes": expected true or false (or 1 or 0)');
    expect(errorOf(["--reuse-port=true"])).toMatch(/^invalid command line: .*reuse-port/);
  });
});

describe("--warm / WARM_TUNNELS", () => {
  test("lower-cased, spaces ignored, duplicates removed, order kept", () => {
    expect(load(["--warm", " CFT-DB-1.example.com ,cft-db-2.example.com,, cft-db-1.example.com"]).warm).toEqual([
      "cft-db-1.example.com",
      "cft-db-2.example.com",
    ]);
    expect(load([], { WARM_TUNNELS: "a.example.com" }).warm).toEqual(["a.example.com"]);
  });

  test("a bad hostname exits naming it", () => {
    expect(errorOf(["--warm", "good.example.com,bad_host.example.com"])).toBe(
      'invalid --warm "good.example.com,bad_host.example.com": expected comma-separated tunnel hostnames like cft-db-1.example.com ("bad_host.example.com" is not a valid hostname)',
    );
    expect(errorOf([], { WARM_TUNNELS: "localhost" })).toContain('("localhost" is not a valid hostname)');
    expect(errorOf(["--warm", "--url=x.example.com"])).toContain('("--url=x.example.com" is not a valid hostname)');
  });

  test("more hostnames than --max-tunnels (after its default is resolved) exits", () => {
    expect(errorOf(["--warm", "a.example.com,b.example.com", "--max-tunnels", "1"])).toBe(
      'invalid --warm "a.example.com,b.example.com": expected at most 1 hostnames (--max-tunnels)',
    );
    expect(errorOf([], { WARM_TUNNELS: "a.example.com,b.example.com,c.example.com", PORT_RANGE_START: "20000", PORT_RANGE_END: "20001" })).toBe(
      'invalid WARM_TUNNELS "a.example.com,b.example.com,c.example.com": expected at most 2 hostnames (--max-tunnels)',
    );
    expect(load(["--warm", "a.example.com,b.example.com,A.example.com", "--max-tunnels", "2"]).warm).toHaveLength(2);
  });
});

describe("--admin-token-file / ADMIN_TOKEN_FILE", () => {
  const dir = mkdtempSync(join(tmpdir(), "ttp-token-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  test("the file's content, trimmed, is the token", () => {
    expect(load(["--admin-token-file", file("ok", "  s3cr3t-token\n")]).adminToken).toBe("s3cr3t-token");
    expect(load([], { ADMIN_TOKEN_FILE: file("env", "from-env\r\n") }).adminToken).toBe("from-env");
  });

  test("a missing or unreadable file exits naming the flag or variable and the reason", () => {
    const missing = join(dir, "missing");
    expect(errorOf(["--admin-token-file", missing])).toBe(
      `invalid --admin-token-file ${JSON.stringify(missing)}: expected a readable file holding the admin token (it cannot be read: ENOENT: no such file or directory)`,
    );
    expect(errorOf([], { ADMIN_TOKEN_FILE: dir })).toStartWith(`invalid ADMIN_TOKEN_FILE ${JSON.stringify(dir)}: expected a readable file`);
    expect(errorOf([], { ADMIN_TOKEN_FILE: dir })).toContain("(it cannot be read: EISDIR");
  });

  test("an empty token exits", () => {
    const empty = file("empty", " \n\t\n");
    expect(errorOf(["--admin-token-file", empty])).toBe(
      `invalid --admin-token-file ${JSON.stringify(empty)}: expected a readable file holding the admin token (it is empty)`,
    );
    expect(errorOf(["--admin-token-file", ""])).toBe('invalid --admin-token-file "": expected a path to a file holding the admin token');
  });

  test("a token that cannot travel in an Authorization header, or a file over 4096 bytes, exits", () => {
    expect(errorOf(["--admin-token-file", file("two-lines", "abc\ndef\n")])).toContain("(the token must be one line of visible ASCII without spaces)");
    expect(errorOf(["--admin-token-file", file("space", "abc def")])).toContain("without spaces");
    expect(load(["--admin-token-file", file("at-cap", "x".repeat(4096))]).adminToken).toHaveLength(4096);
    expect(errorOf(["--admin-token-file", file("big", "x".repeat(4097))])).toContain("(it is longer than 4096 bytes)");
  });

  test("the token never appears in an error message", () => {
    expect(errorOf(["--admin-token-file", file("secret-space", "top secret")])).not.toContain("top secret");
  });
});

describe("--workers / WORKERS", () => {
  test("a whole number 1-64", () => {
    expect(load(["--workers", "1"]).workers).toBe(1);
    expect(load([], { WORKERS: "64" }).workers).toBe(64);
  });

  test.each(["0", "65", "-1", "2.5", "many"])("%p is refused", (value) => {
    expect(errorOf(["--workers", value])).toBe(`invalid --workers ${JSON.stringify(value)}: expected a whole number 1-64`);
    expect(errorOf([], { WORKERS: value })).toStartWith(`invalid WORKERS ${JSON.stringify(value)}`);
  });
});

import { describe, expect, test } from "bun:test";
import { Prelude, type PreludeStep } from "../../src/edge/prelude.ts";
import { concat, fromAscii } from "../../src/protocol/bytes.ts";
import { GSSENC_REQUEST_CODE } from "../../src/protocol/postgres.ts";
import { ALERT_UNRECOGNIZED_NAME, SSL_REQUEST, TLS_REQUIRED_ERROR, cancelRequest } from "../helpers/wire.ts";
import { clientHello, fixture, ipv4Addresses, pgRequest, proxyV2, records, startupMessage } from "../helpers/builders.ts";

interface Run {
  /** The first step that is not needMore (the connection stops feeding there), or the last step. */
  final: PreludeStep;
  replies: Uint8Array;
}

function feed(chunks: Uint8Array[], trusted = false, routeCancels = true): Run {
  const prelude = new Prelude(trusted, routeCancels);
  const replies: Uint8Array[] = [];
  let step: PreludeStep = { kind: "needMore", reply: null };
  for (const chunk of chunks) {
    step = prelude.feed(chunk);
    if (step.reply) replies.push(step.reply);
    if (step.kind !== "needMore") break;
  }
  return { final: step, replies: concat(replies) };
}

function summary(run: Run) {
  const step = run.final;
  const base = { kind: step.kind, replies: [...run.replies] };
  if (step.kind === "hello") {
    return { ...base, sni: step.hello.serverName, ssl: step.sslRequest, replay: [...step.replay], proxy: step.proxyHeader && [...step.proxyHeader.bytes] };
  }
  if (step.kind === "refuse") return { ...base, outcome: step.outcome, code: step.code };
  if (step.kind === "cancel") return { ...base, request: [...step.request], proxy: step.proxyHeader && [...step.proxyHeader.bytes] };
  return base;
}

/** Feeding the input whole, or cut into two or three chunks anywhere, ends the same way. */
function expectSplitInvariant(input: Uint8Array, trusted = false, routeCancels = true): ReturnType<typeof summary> {
  const whole = summary(feed([input], trusted, routeCancels));
  for (let a = 1; a < input.length; a++) {
    expect(summary(feed([input.subarray(0, a), input.subarray(a)], trusted, routeCancels))).toEqual(whole);
  }
  const step = Math.max(1, Math.floor(input.length / 40));
  for (let a = 1; a < input.length; a += step) {
    for (let b = a + 1; b < input.length; b += step) {
      expect(summary(feed([input.subarray(0, a), input.subarray(a, b), input.subarray(b)], trusted, routeCancels))).toEqual(whole);
    }
  }
  return whole;
}

const tail = fromAscii("early data");
const hello = records(clientHello({ names: ["db-1.demo.test"], alpn: ["postgresql"] }));
const proxyHeader = proxyV2({ addresses: ipv4Addresses([203, 0, 113, 9], [10, 0, 0, 1], 40000, 19000) });

describe("routable preludes", () => {
  test.each(["openssl-s_client", "curl", "node-tls"])("TLS from %s", (name) => {
    const input = fixture(name);
    expect(expectSplitInvariant(input)).toMatchObject({ kind: "hello", sni: "db-1.demo.test", ssl: false, replay: [...input] });
  });

  test("psql: S is answered and the SSLRequest is not in the replay", () => {
    const input = fixture("psql");
    expect(expectSplitInvariant(input)).toMatchObject({ kind: "hello", ssl: true, replies: [0x53], replay: [...input.subarray(8)] });
  });

  test("S is answered as soon as the 8-byte SSLRequest is in", () => {
    const step = new Prelude(false, true).feed(SSL_REQUEST);
    expect(step).toEqual({ kind: "needMore", reply: fromAscii("S") });
  });

  test("GSSENCRequest gets N, then SSLRequest gets S", () => {
    const input = concat([pgRequest(GSSENC_REQUEST_CODE), SSL_REQUEST, hello]);
    expect(expectSplitInvariant(input)).toMatchObject({ kind: "hello", replies: [0x4e, 0x53], ssl: true });
  });

  test("trusted PROXY v2 + SSLRequest + hello", () => {
    const input = concat([proxyHeader, SSL_REQUEST, hello]);
    expect(expectSplitInvariant(input, true)).toMatchObject({ kind: "hello", ssl: true, proxy: [...proxyHeader], replay: [...hello] });
  });

  test("bytes that arrive with the hello stay queued for replay", () => {
    const step = feed([concat([proxyHeader, SSL_REQUEST, hello, tail])], true).final;
    expect(step.kind === "hello" && [...step.replay]).toEqual([...hello, ...tail]);
  });

  test("a PROXY v2 LOCAL header (a balancer's health check) with family TCP4 and no address block", () => {
    const local = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x11, 0x00, 0x00]);
    const run = feed([concat([local, hello])], true);
    expect(run.final.kind === "hello" && run.final.proxyHeader).toMatchObject({ command: "LOCAL", source: null });
    expect(expectSplitInvariant(concat([local, hello]), true)).toMatchObject({ kind: "hello", proxy: [...local], replay: [...hello] });
  });

  test("trusted PROXY v1 + TLS", () => {
    const header = fromAscii("PROXY TCP4 203.0.113.9 10.0.0.1 40000 19000\r\n");
    expect(expectSplitInvariant(concat([header, hello]), true)).toMatchObject({ kind: "hello", proxy: [...header] });
  });
});

describe("plaintext CancelRequest", () => {
  const cancel = cancelRequest(12345, 0xdeadbeef);

  test("handed on whole, with the PROXY header it came behind, when cancel routing is on", () => {
    expect(expectSplitInvariant(cancel)).toMatchObject({ kind: "cancel", replies: [], request: [...cancel], proxy: null });
    expect(expectSplitInvariant(concat([proxyHeader, cancel]), true)).toMatchObject({ kind: "cancel", request: [...cancel], proxy: [...proxyHeader] });
  });

  test("refused with the TLS-required ErrorResponse when cancel routing is off (--cancel-fanout 0)", () => {
    expect(expectSplitInvariant(cancel, false, false)).toMatchObject({ kind: "refuse", outcome: "refused_no_sni", replies: TLS_REQUIRED_ERROR });
  });
});

test("a client that never completes its ClientHello holds about what it sent, not a doubled buffer", () => {
  const big = records(clientHello({ names: ["db-1.demo.test"], padding: 60_000 }));
  const prelude = new Prelude(false, true);
  let sent = 0;
  for (let offset = 0; offset < big.length - 1; offset += 1000) {
    const chunk = big.subarray(offset, Math.min(offset + 1000, big.length - 1));
    expect(prelude.feed(chunk).kind).toBe("needMore");
    sent += chunk.length;
    expect(prelude.heldBytes).toBeLessThanOrEqual(Math.max(256, sent * 1.25));
  }
  const done = new Prelude(false, true);
  done.feed(SSL_REQUEST.subarray(0, 5));
  done.feed(SSL_REQUEST.subarray(5));
  expect(done.heldBytes).toBe(0);
});

describe("refusals", () => {
  test("a PROXY header from an untrusted peer", () => {
    expect(expectSplitInvariant(concat([proxyHeader, hello]))).toMatchObject({ kind: "refuse", outcome: "refused_untrusted_proxy", replies: [] });
  });

  test("a second PROXY header", () => {
    expect(expectSplitInvariant(concat([proxyHeader, proxyHeader]), true)).toMatchObject({ kind: "refuse", code: "unexpected_byte" });
  });

  test("PROXY v2 over UDP", () => {
    const udp = proxyV2({ family: 0x12, addresses: ipv4Addresses([1, 1, 1, 1], [2, 2, 2, 2], 1, 2) });
    expect(feed([udp], true).final).toMatchObject({ kind: "refuse", code: "proxy_not_tcp" });
  });

  test("a plaintext StartupMessage gets the TLS-required ErrorResponse", () => {
    expect(expectSplitInvariant(startupMessage({ user: "app" }))).toMatchObject({
      kind: "refuse",
      outcome: "refused_no_sni",
      replies: TLS_REQUIRED_ERROR,
    });
  });

  test("an unknown first byte is refused at once, with no reply", () => {
    expect(feed([fromAscii("G")]).final).toMatchObject({ kind: "refuse", code: "unexpected_byte", reply: null });
  });

  test("SSLRequest followed by something other than TLS", () => {
    expect(expectSplitInvariant(concat([SSL_REQUEST, fromAscii("GET /")]))).toMatchObject({
      kind: "refuse",
      code: "unexpected_byte",
      replies: [0x53],
    });
  });

  test("malformed TLS gets an unrecognized_name alert", () => {
    const bad = hello.slice();
    const sessionIdLength = 5 + 4 + 2 + 32;
    bad[sessionIdLength] = 0xff;
    expect(summary(feed([bad]))).toMatchObject({ kind: "refuse", outcome: "refused_invalid", replies: ALERT_UNRECOGNIZED_NAME });
  });
});

import { describe, expect, test } from "bun:test";
import { harness, type Harness } from "./connection-harness.ts";
import { clientHello, records, rng } from "../helpers/builders.ts";
import { ALERT_INTERNAL_ERROR, SSL_REQUEST } from "../helpers/wire.ts";
import { within } from "../helpers/deadline.ts";

const HELLO = records(clientHello({ names: ["db-1.example.test"] }));

/** The connection gave back everything it took and reported exactly once. */
function expectSettled(h: Harness): void {
  expect(h.finished).toHaveLength(1);
  expect(h.connection.state).toBe("finished");
  for (const lease of h.leases) expect(lease.releases).toBe(1);
  expect(h.logs.filter((line) => line.includes("bug: illegal"))).toEqual([]);
}

describe("every exit path finishes the connection once", () => {
  test("the client leaves while the connect to a dead tunnel port is in flight, then the connect fails", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(HELLO);
    expect(h.connecting).toEqual([20000]);
    h.client.close();
    expect(h.finished).toHaveLength(1);
    h.connection.onBackendConnectError(new Error("ECONNREFUSED"));
    expectSettled(h);
    expect(h.finished[0]?.outcome).toBe("timeout");
  });

  test("the drain deadline passes while the connect is in flight, then the connect fails", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(HELLO);
    h.connection.abandon("drain timeout");
    h.connection.onBackendConnectError(new Error("ECONNREFUSED"));
    expectSettled(h);
  });

  test("the tunnel fails for good while the connect is in flight, then the connect fails", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(HELLO);
    h.connection.onTunnelLost("crashed 4 times in a row");
    h.connection.onBackendConnectError(new Error("ECONNREFUSED"));
    expectSettled(h);
    expect(h.finished[0]?.outcome).toBe("tunnel_failed");
    expect(h.client.written).toEqual(ALERT_INTERNAL_ERROR);
  });

  test("a connect the tunnel accepted and reset (an origin it cannot reach) gives alert 80 and names that cause", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(HELLO);
    h.connection.onBackendConnectError(Object.assign(new Error("Failed to connect"), { code: "ECONNRESET" }));
    expectSettled(h);
    expect(h.client.written).toEqual(ALERT_INTERNAL_ERROR);
    expect(h.finished[0]?.outcome).toBe("backend_error");
    expect(String(h.finished[0]?.summary.reason)).toContain("could not reach the origin");
  });

  test("a connect refused by the tunnel port gives alert 80 and the errno", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(HELLO);
    h.connection.onBackendConnectError(Object.assign(new Error("Failed to connect"), { code: "ECONNREFUSED" }));
    expectSettled(h);
    expect(h.client.written).toEqual(ALERT_INTERNAL_ERROR);
    expect(h.finished[0]).toMatchObject({ outcome: "backend_error", summary: { reason: "connect to tunnel port failed: ECONNREFUSED" } });
  });

  test("the connect succeeds after the client left: the late backend socket is closed, nothing leaks", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(HELLO);
    h.client.close();
    const late = h.backendOpens();
    expect(late.closed).toBe(true);
    expectSettled(h);
  });

  test("a lease that arrives after the client left is released at once", () => {
    const h = harness();
    h.connection.onClientData(HELLO);
    h.client.close();
    expect(h.finished).toHaveLength(1);
    h.acquire?.resolve(h.lease(20001));
    return Promise.resolve().then(() => {
      expectSettled(h);
      expect(h.connecting).toEqual([]);
    });
  });
});

describe("the backend hangs up before answering the SSLRequest", () => {
  for (const how of ["FIN", "close"] as const) {
    test(`backend ${how}: closed at once with backend_error and an internal_error alert`, () => {
      const h = harness({ warm: true });
      h.connection.onClientData(new Uint8Array([...SSL_REQUEST, ...HELLO]));
      const backend = h.backendOpens();
      expect(h.connection.state).toBe("awaitingSslAnswer");
      if (how === "FIN") h.connection.onEnd(h.connection.backend);
      else backend.close();
      expectSettled(h);
      expect(h.finished[0]?.outcome).toBe("backend_error");
      expect(String(h.finished[0]?.summary.reason)).toBe("backend closed before answering the SSLRequest");
      expect(h.client.written).toEqual([0x53, ...ALERT_INTERNAL_ERROR]);
    });
  }
});

test("a client FIN while its tunnel starts: it has left (timeout), no backend connect, the late lease given back", async () => {
  const h = harness();
  h.connection.onClientData(HELLO);
  h.connection.onEnd(h.connection.client);
  expect(h.finished[0]).toMatchObject({ outcome: "timeout", summary: { reason: "client left before the tunnel was ready" } });
  h.acquire?.resolve(h.lease(20003));
  await Promise.resolve();
  expect(h.connecting).toEqual([]);
  expectSettled(h);
});

describe("a PROXY source's limit decided in another thread (worker mode)", () => {
  const header = new TextEncoder().encode("PROXY TCP4 198.51.100.7 10.0.0.1 40000 19000\r\n");

  test("allowed: the connection counts under the source and goes on to its tunnel", async () => {
    const h = harness({ trusted: true, warm: true, admitVerdict: Promise.resolve(true) });
    h.connection.onClientData(new Uint8Array([...header, ...HELLO]));
    expect(h.connection.state).toBe("admitting");
    await Promise.resolve();
    expect(h.rekeyed).toEqual(["198.51.100.7"]);
    expect(h.connecting).toEqual([20000]);
  });

  test("a verdict that arrives after the connection closed changes nothing", async () => {
    let allow!: (allowed: boolean) => void;
    const h = harness({ trusted: true, warm: true, admitVerdict: new Promise((resolve) => (allow = resolve)) });
    h.connection.onClientData(new Uint8Array([...header, ...HELLO]));
    h.connection.abandon("drain timeout");
    allow(true);
    await Promise.resolve();
    await Promise.resolve();
    expect(h.rekeyed).toEqual([]);
    expect(h.leases).toEqual([]);
    expectSettled(h);
  });

  test("refused: closed as refused_limit", async () => {
    const h = harness({ trusted: true, admitVerdict: Promise.resolve(false) });
    h.connection.onClientData(new Uint8Array([...header, ...HELLO]));
    await Promise.resolve();
    await Promise.resolve();
    expect(h.finished[0]).toMatchObject({ outcome: "refused_limit" });
    expect(h.rekeyed).toEqual([]);
  });
});

test("a socket handler that throws is logged as a bug and its connection finishes", () => {
  const h = harness({ warm: true });
  h.connection.onClientData(HELLO);
  h.connection.onHandlerError(new Error("boom"));
  h.connection.onBackendConnectError(new Error("ECONNREFUSED"));
  expect(h.finished).toHaveLength(1);
  expect(h.finished[0]?.summary.reason).toBe("internal error: boom");
  expect(h.logs.some((line) => line.includes("bug: connection handler threw"))).toBe(true);
});

/** Events that can reach a connection, in any order; those that cannot happen in the current state are skipped. */
const EVENTS: Record<string, (h: Harness) => void> = {
  hello: (h) => h.connection.onClientData(HELLO),
  sslRequest: (h) => h.connection.onClientData(SSL_REQUEST),
  moreClientData: (h) => h.connection.onClientData(new Uint8Array([1, 2, 3])),
  clientFin: (h) => h.connection.onEnd(h.connection.client),
  clientGone: (h) => h.client.close(),
  leaseArrives: (h) => h.acquire !== null && h.acquire.resolve(h.lease(20001)),
  acquireFails: (h) => h.acquire?.reject(new Error("tunnel failed")),
  connectFails: (h) => {
    if (h.connecting.length > 0) {
      h.connecting.shift();
      h.connection.onBackendConnectError(new Error("ECONNREFUSED"));
    }
  },
  backendOpens: (h) => {
    if (h.connecting.length > 0 && h.backend === null) h.backendOpens();
  },
  backendAnswersS: (h) => h.backend !== null && !h.backend.closed && h.connection.onBackendData(new Uint8Array([0x53])),
  backendData: (h) => h.backend !== null && !h.backend.closed && h.connection.onBackendData(new Uint8Array([9, 9])),
  backendFin: (h) => h.backend !== null && !h.backend.closed && h.connection.onEnd(h.connection.backend),
  backendGone: (h) => h.backend?.close(),
  tunnelLost: (h) => h.leases.length > 0 && h.connection.onTunnelLost("tunnel needs login"),
  abandon: (h) => h.connection.abandon("drain timeout"),
  handlerThrows: (h) => h.connection.onHandlerError(new Error("boom")),
};

/** What the world does eventually: pending operations settle and both peers go away. */
async function settleEverything(h: Harness): Promise<void> {
  for (let round = 0; round < 4; round++) {
    h.acquire?.reject(new Error("shutting down"));
    await Promise.resolve();
    while (h.connecting.length > 0) {
      h.connecting.shift();
      h.connection.onBackendConnectError(new Error("ECONNREFUSED"));
    }
    h.client.close();
    h.backend?.close();
    await Promise.resolve();
  }
}

test("5,000 random orders of events: each connection finishes exactly once and releases every lease once", async () => {
  const names = Object.keys(EVENTS);
  const random = rng(20261126);
  for (let run = 0; run < 5000; run++) {
    const h = harness({ warm: random() < 0.5 });
    const trace: string[] = [];
    const steps = 1 + Math.floor(random() * 10);
    for (let i = 0; i < steps; i++) {
      const name = names[Math.floor(random() * names.length)] as string;
      trace.push(name);
      EVENTS[name]?.(h);
      await Promise.resolve();
    }
    await settleEverything(h);
    const problem =
      h.finished.length !== 1 ? `finished ${h.finished.length} times` :
      h.leases.some((l) => l.releases !== 1) ? `lease releases ${JSON.stringify(h.leases)}` :
      h.logs.find((line) => line.includes("bug: illegal")) ?? null;
    if (problem !== null) throw new Error(`run ${run}: ${problem} after ${trace.join(" → ")}`);
  }
});

test("more than 1 MiB of early data while the tunnel starts is refused (queue_full), and the late lease given back", async () => {
  const h = harness();
  h.connection.onClientData(HELLO);
  expect(h.client.paused).toBe(false);
  h.connection.onClientData(new Uint8Array(64 * 1024));
  expect(h.client.paused).toBe(false);
  h.connection.onClientData(new Uint8Array(1));
  expect(h.client.paused).toBe(true);
  for (let i = 0; i < 14; i++) h.connection.onClientData(new Uint8Array(64 * 1024));
  h.connection.onClientData(new Uint8Array(64 * 1024 - 1));
  expect(h.finished).toHaveLength(0);
  h.connection.onClientData(new Uint8Array(1));
  expect(h.finished).toHaveLength(1);
  expect(h.finished[0]).toMatchObject({ outcome: "refused_invalid", summary: { reason: "client sent more than 1 MiB before its tunnel was ready" } });
  h.acquire?.resolve(h.lease(20002));
  await Promise.resolve();
  expectSettled(h);
});

test("a connect to the tunnel port that never completes is failed after the hello timeout, with an alert", async () => {
  const h = harness({ warm: true, helloTimeoutMs: 30 });
  h.connection.onClientData(HELLO);
  expect(h.connecting).toEqual([20000]);
  await within(1000, h.whenFinished, "the connect deadline");
  expect(h.finished[0]).toMatchObject({ outcome: "backend_error", summary: { reason: "connect to the tunnel port timed out" } });
  expect(h.client.written).toEqual(ALERT_INTERNAL_ERROR);
});

test("a backend that opens in time clears the connect deadline: the pipe is not failed later", async () => {
  const h = harness({ warm: true, helloTimeoutMs: 30 });
  h.connection.onClientData(HELLO);
  h.backendOpens();
  expect(h.connection.state).toBe("piping");
  await Bun.sleep(80);
  expect(h.connection.state).toBe("piping");
  expect(h.finished).toHaveLength(0);
});

describe("what the pipe and the replay must keep", () => {
  test("abandoned (drain deadline) while piping counts as proxied, before routing as timeout", () => {
    const piping = harness({ warm: true });
    piping.connection.onClientData(HELLO);
    piping.backendOpens();
    piping.connection.abandon("drain timeout");
    expect(piping.finished[0]).toMatchObject({ outcome: "proxied", summary: { reason: "drain timeout" } });
    const early = harness();
    early.connection.abandon("drain timeout");
    expect(early.finished[0]).toMatchObject({ outcome: "timeout" });
  });

  test("a backend that answers the SSLRequest with anything but S gets no ClientHello; the client only our S", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(new Uint8Array([...SSL_REQUEST, ...HELLO]));
    const backend = h.backendOpens();
    h.connection.onBackendData(new Uint8Array([0x45, 0, 0, 0, 8]));
    expect(h.finished[0]).toMatchObject({ outcome: "backend_refused_tls" });
    expect(backend.written).toEqual([...SSL_REQUEST]);
    expect(h.client.written).toEqual([0x53]);
  });

  test("a received PROXY header is replayed as it came, even with --send-proxy v2", () => {
    const v1 = [...new TextEncoder().encode("PROXY TCP4 198.51.100.4 10.0.0.1 51000 19000\r\n")];
    const h = harness({ warm: true, trusted: true, sendProxy: "v2" });
    h.connection.onClientData(new Uint8Array([...v1, ...HELLO]));
    const backend = h.backendOpens();
    expect(backend.written).toEqual([...v1, ...HELLO]);
  });

  test("backpressure: the source is paused while the other side holds bytes, and resumed once they are written", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(HELLO);
    const backend = h.backendOpens();
    backend.room = 10;
    h.connection.onClientData(new Uint8Array(100).fill(7));
    expect(h.client.paused).toBe(true);
    backend.room = Number.POSITIVE_INFINITY;
    h.connection.onDrain(h.connection.backend);
    expect(backend.written.length).toBe(HELLO.length + 100);
    expect(h.client.paused).toBe(false);
  });

  test("a client FIN is passed on only after the bytes still pending for the backend are written", () => {
    const h = harness({ warm: true });
    h.connection.onClientData(HELLO);
    const backend = h.backendOpens();
    backend.room = 10;
    h.connection.onClientData(new Uint8Array(100).fill(7));
    h.connection.onEnd(h.connection.client);
    expect(backend.shut).toBe(false);
    backend.room = Number.POSITIVE_INFINITY;
    h.connection.onDrain(h.connection.backend);
    expect(backend.written.length).toBe(HELLO.length + 100);
    expect(backend.shut).toBe(true);
  });
});

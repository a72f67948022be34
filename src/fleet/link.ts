// The fleet's connections to the Redis-protocol server: connect, subscribe, notice a loss or a hang, reconnect.
import { RedisClient, type RedisOptions } from "bun";
import type { Clock, Timer } from "../clock.ts";
import type { Logger } from "../ops/log.ts";
import { redactUrl, scrubSecrets } from "../config/fleet-url.ts";

/** Every call, the handshake included, gets this long; a server that takes longer is treated as gone. */
export const CALL_TIMEOUT_MS = 1000;
const RETRY_FIRST_MS = 250;
const RETRY_CAP_MS = 5000;
/** How often both connections are pinged while up: a hung server or a silently dropped path shows within 2 s. */
const HEARTBEAT_MS = 1000;

/*
 * What Bun 1.4.5's RedisClient does, measured against redis-server 7.0, and what this file does about it:
 * - With autoReconnect it retries up to maxRetries times, then gives up for good; a reconnected client does not
 *   restore its subscriptions (a publish after a server restart reaches 0 subscribers). So autoReconnect is off and
 *   this link rebuilds both clients itself, with its own backoff, forever.
 * - With autoReconnect off, onclose runs at once when the server dies, and close() rejects every pending call at once.
 * - A command sent to a server that is stopped (SIGSTOP) or unreachable without a reset never settles, and the
 *   client buffers whatever is sent after it without limit (2000 publishes made 16 MB of bufferedAmount). So every
 *   call is raced against a timer here, a timeout closes the connections, and the fleet bounds its publishes.
 * - connectionTimeout does bound the handshake (HELLO, AUTH, SELECT) against a stopped server.
 * - With enableOfflineQueue off, a call on a client that is not connected rejects at once instead of waiting.
 * - A subscribed connection answers PING; it cannot send other commands, hence two connections. duplicate() would
 *   copy the options but neither the onclose handler nor the subscriptions, so both are simply built from the URL.
 * - An exception thrown by a subscription listener surfaces as an uncaught error, so the listener catches.
 * - An authentication failure, and with rediss:// a certificate the process does not trust (NODE_EXTRA_CA_CERTS adds
 *   a CA), are reported as "Connection closed", like a refused connection. Errors never quoted the URL; they are
 *   scrubbed of the password before being logged anyway.
 */
const CLIENT_OPTIONS: RedisOptions = {
  autoReconnect: false,
  enableOfflineQueue: false,
  connectionTimeout: CALL_TIMEOUT_MS,
};

export type LinkState = "idle" | "connecting" | "up" | "waiting" | "closed";

export interface LinkEvents {
  /** Both connections are open and subscribed (again). */
  up(): void;
  message(text: string): void;
}

interface Session {
  readonly commands: RedisClient;
  readonly subscriber: RedisClient;
}

class CallTimeout extends Error {}

/** `promise`, or a rejection after `ms`. */
export function bounded<T>(promise: Promise<T>, ms: number, clock: Clock): Promise<T> {
  let timer: Timer | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = clock.after(ms, () => reject(new CallTimeout(`no answer within ${ms} ms`)));
  });
  return Promise.race([promise, deadline]).finally(() => timer?.cancel());
}

export class RedisLink {
  #state: LinkState = "idle";
  #session: Session | null = null;
  #timer: Timer | null = null;
  #failures = 0;
  /** One warning per outage: set when it is logged, cleared when the link is up again. */
  #warned = false;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly events: LinkEvents,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

  get state(): LinkState {
    return this.#state;
  }

  start(): void {
    if (this.#state === "idle") void this.#connect();
  }

  /**
   * Runs `work` on the command connection, bounded to CALL_TIMEOUT_MS as a whole. Rejects at once when the link is
   * not up; a timeout also closes the connections (the server is hung) and starts reconnecting.
   */
  call<T>(work: (client: RedisClient) => Promise<T>): Promise<T> {
    const session = this.#session;
    if (this.#state !== "up" || session === null) return Promise.reject(new Error("not connected to the fleet store"));
    let running: Promise<T>;
    try {
      running = work(session.commands);
    } catch (error) {
      running = Promise.reject(error);
    }
    return bounded(running, CALL_TIMEOUT_MS, this.clock).catch((error: unknown) => {
      const reason = this.#describe(error);
      if (error instanceof CallTimeout) this.#lost(session, reason);
      throw new Error(`fleet store: ${reason}`);
    });
  }

  /** Closes both connections for good; pending calls reject at once. */
  close(): void {
    this.#state = "closed";
    this.#timer?.cancel();
    this.#timer = null;
    this.#drop();
  }

  async #connect(): Promise<void> {
    this.#state = "connecting";
    let session: Session;
    try {
      session = { commands: new RedisClient(this.url, CLIENT_OPTIONS), subscriber: new RedisClient(this.url, CLIENT_OPTIONS) };
    } catch (error) {
      return this.#retry(this.#describe(error));
    }
    this.#session = session;
    const lost = (error: Error | undefined) => this.#lost(session, this.#describe(error ?? "connection closed"));
    session.commands.onclose = lost;
    session.subscriber.onclose = lost;
    try {
      await bounded(Promise.all([session.commands.connect(), session.subscriber.connect()]), CALL_TIMEOUT_MS, this.clock);
      const listener = (message: string) => {
        if (this.#session !== session) return;
        try {
          this.events.message(message);
        } catch (error) {
          // Bun reports an exception thrown by a listener as uncaught (in the proxy: fatal); keep it a log line.
          this.log.error("fleet message handling failed", { error: this.#describe(error) });
        }
      };
      await bounded(session.subscriber.subscribe(this.channel, listener), CALL_TIMEOUT_MS, this.clock);
    } catch (error) {
      return this.#lost(session, this.#describe(error));
    }
    if (this.#session !== session) return;
    this.#state = "up";
    this.#failures = 0;
    this.log.info(this.#warned ? "fleet store reachable again" : "fleet joined", { redis: redactUrl(this.url), channel: this.channel });
    this.#warned = false;
    this.#heartbeat(session);
    this.events.up();
  }

  #heartbeat(session: Session): void {
    this.#timer = this.clock.after(HEARTBEAT_MS, () => {
      if (this.#session !== session) return;
      const pings = Promise.all([session.commands.ping(), session.subscriber.ping()]);
      bounded(pings, CALL_TIMEOUT_MS, this.clock).then(
        () => {
          if (this.#session === session) this.#heartbeat(session);
        },
        (error: unknown) => this.#lost(session, this.#describe(error)),
      );
    });
  }

  /** The session failed (closed, refused, timed out): drop it and try again later, unless it was already replaced. */
  #lost(session: Session, reason: string): void {
    if (this.#session !== session) return;
    this.#drop();
    if (this.#state !== "closed") this.#retry(reason);
  }

  #drop(): void {
    const session = this.#session;
    this.#session = null;
    session?.commands.close();
    session?.subscriber.close();
  }

  #retry(reason: string): void {
    const delay = Math.min(RETRY_FIRST_MS * 2 ** this.#failures, RETRY_CAP_MS);
    this.#failures++;
    this.#state = "waiting";
    this.#timer?.cancel();
    const fields = { redis: redactUrl(this.url), error: reason, retry_ms: delay };
    if (this.#warned) {
      this.log.debug("fleet store still unreachable", fields);
    } else {
      this.#warned = true;
      this.log.warn("fleet store unreachable; cancels stay local until it is back", fields);
    }
    this.#timer = this.clock.after(delay, () => {
      this.#timer = null;
      if (this.#state === "waiting") void this.#connect();
    });
  }

  #describe(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    return scrubSecrets(text, this.url);
  }
}

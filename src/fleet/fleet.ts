// A proxy's membership in a fleet: relays cancels to and from the other members and keeps its own member record.
// It knows no connection: main gives it the local tunnels and the local cancel routing as plain functions.
import { realClock, type Clock, type Timer } from "../clock.ts";
import type { Logger } from "../ops/log.ts";
import { RedisLink } from "./link.ts";
import { decodeCancel, encodeCancel, type CancelNotice, type RelayedCancel } from "./message.ts";
import { buildRecord, type MemberRecord, type MemberTunnel } from "./record.ts";
import { Roster } from "./roster.ts";

export interface FleetOptions {
  /** redis[s]://… as parseFleetUrl accepted it. */
  readonly url: string;
  /** Prefix of every key and channel (isFleetToken). */
  readonly name: string;
  /** This member's id (isNodeId), unique in the fleet. */
  readonly nodeId: string;
  readonly version: string;
  /** The listen address as text, for the member record. */
  readonly listen: string;
  /** Epoch ms. */
  readonly startedAt: number;
  /** How long a record outlives its member's last refresh. */
  readonly memberTtlMs?: number;
  readonly refreshMs?: number;
  /** Relayed cancels being routed at once; beyond this, one is dropped. */
  readonly maxRouting?: number;
}

export type RouteResult = "forwarded" | "unroutable";
export type RelayResult = RouteResult | "invalid" | "dropped";

export interface FleetDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  /** This member's tunnels, for its record. */
  tunnels(): readonly MemberTunnel[];
  /** Routes a cancel another member received, by this member's own registry; never starts a tunnel. */
  route(cancel: RelayedCancel): Promise<RouteResult>;
}

export const MEMBER_TTL_MS = 15_000;
export const REFRESH_MS = 5000;
export const MAX_ROUTING = 64;
/** Publishes waiting for the server at once: a hung server holds at most this many, never a growing queue. */
const MAX_PUBLISHING = 64;

export class Fleet {
  readonly #link: RedisLink;
  readonly #clock: Clock;
  readonly #roster: Roster;
  readonly #channel: string;
  readonly #counts: Record<RelayResult, number> = { forwarded: 0, unroutable: 0, invalid: 0, dropped: 0 };
  #routing = 0;
  #publishing = 0;
  #memberCount = 0;
  #refresh: Timer | null = null;
  /** Set by leave(): the record is gone and not written again, while relayed cancels are still received. */
  #leaving: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  constructor(
    private readonly options: FleetOptions,
    private readonly deps: FleetDeps,
  ) {
    this.#clock = deps.clock ?? realClock;
    this.#channel = `${options.name}:cancels`;
    const events = { up: () => void this.#register(), message: (text: string) => this.#receive(text) };
    this.#link = new RedisLink(options.url, this.#channel, events, deps.log, this.#clock);
    this.#roster = new Roster(this.#link, options.name);
  }

  /** Connects in the background and keeps reconnecting; never throws, and the proxy serves meanwhile. */
  start(): void {
    if (this.#stopping !== null || this.#link.state !== "idle") return;
    this.#link.start();
    this.#scheduleRefresh();
  }

  /** Connected and subscribed now. */
  get up(): boolean {
    return this.#link.state === "up";
  }

  /** Live members at the last refresh, this one included. */
  get memberCount(): number {
    return this.#memberCount;
  }

  /** Relayed cancels received, by what became of them. */
  counts(): Record<RelayResult, number> {
    return { ...this.#counts };
  }

  /** Sends the cancel to the other members; returns at once, and drops it when the store is down or hung. */
  publish(notice: CancelNotice): void {
    const refusal = this.#publishRefusal();
    if (refusal !== null) return this.deps.log.debug("fleet cancel not published", { reason: refusal, client: notice.client });
    const message = encodeCancel(notice, this.options.nodeId, this.#clock.now());
    this.#publishing++;
    this.#link
      .call((client) => client.publish(this.#channel, message))
      .catch((error: Error) => this.deps.log.debug("fleet cancel not published", { reason: error.message, client: notice.client }))
      .finally(() => this.#publishing--);
  }

  /** The live members' records, sorted by node id, read from the store now; rejects within about 1 s without it. */
  members(): Promise<MemberRecord[]> {
    return this.#roster.read();
  }

  /**
   * Leaves the member list at once (the record is deleted, bounded, and never written again) but keeps receiving
   * relayed cancels: a draining proxy still serves its open sessions, and their cancels now arrive through the others.
   */
  leave(): Promise<void> {
    this.#leaving ??= this.#removeRecord();
    return this.#leaving;
  }

  /** Leaves, then closes; resolves within about 1 s whatever the store does. */
  stop(): Promise<void> {
    this.#stopping ??= this.leave().then(() => this.#link.close());
    return this.#stopping;
  }

  async #removeRecord(): Promise<void> {
    this.#refresh?.cancel();
    if (!this.up) return;
    await this.#roster
      .remove(this.options.nodeId)
      .catch((error: Error) => this.deps.log.warn("fleet record not deleted; it expires by itself", { error: error.message }));
  }

  #publishRefusal(): string | null {
    if (this.#stopping !== null) return "stopped";
    if (!this.up) return "not connected";
    return this.#publishing >= MAX_PUBLISHING ? "too many waiting" : null;
  }

  #scheduleRefresh(): void {
    this.#refresh = this.#clock.after(this.options.refreshMs ?? REFRESH_MS, () => {
      void this.#register();
      this.#scheduleRefresh();
    });
  }

  /** Writes this member's record and counts the live members; a failure waits for the next refresh. */
  async #register(): Promise<void> {
    if (!this.up || this.#leaving !== null) return;
    try {
      const record = buildRecord(this.options, this.deps.tunnels());
      await this.#roster.write(record, this.options.memberTtlMs ?? MEMBER_TTL_MS, this.#clock.now());
      this.#memberCount = (await this.#roster.read()).length;
    } catch (error) {
      if (this.#leaving !== null) return;
      this.deps.log.debug("fleet record not refreshed", { error: error instanceof Error ? error.message : String(error) });
    }
  }

  #receive(text: string): void {
    if (this.#stopping !== null) return;
    const decoded = decodeCancel(text, this.#clock.now());
    if (decoded.kind === "invalid") {
      this.#counts.invalid++;
      return this.deps.log.debug("fleet message invalid", { problem: decoded.problem, length: text.length });
    }
    const cancel = decoded.cancel;
    if (cancel.from === this.options.nodeId) return;
    if (this.#routing >= (this.options.maxRouting ?? MAX_ROUTING)) {
      this.#counts.dropped++;
      return this.deps.log.debug("fleet cancel dropped", { from: cancel.from, client: cancel.client, routing: this.#routing });
    }
    this.#routing++;
    let routing: Promise<RouteResult>;
    try {
      routing = this.deps.route(cancel);
    } catch (error) {
      routing = Promise.reject(error);
    }
    routing
      .catch((error: unknown) => {
        this.deps.log.warn("fleet cancel routing failed", { from: cancel.from, client: cancel.client, error: String(error) });
        return "unroutable" as const;
      })
      .then((result) => {
        this.#counts[result]++;
        this.deps.log.debug("fleet cancel received", { from: cancel.from, client: cancel.client, result });
      })
      .finally(() => this.#routing--);
  }
}

// The member records in the store: one key per member that expires unless refreshed, and an index of node ids.
import type { RedisLink } from "./link.ts";
import { parseRecord, type MemberRecord } from "./record.ts";
import { isNodeId } from "../config/fleet-url.ts";

/**
 * Ids not refreshed for this long leave the index. Liveness is the record's TTL alone; the index only spares a SCAN
 * of a keyspace that may be shared and large, so its scores (each writer's own clock) may be off by minutes.
 */
const INDEX_GRACE_MS = 10 * 60_000;
/** Listing reads at most this many ids; a fleet is a handful of proxies. */
const MAX_MEMBERS = 1000;

/*
 * Commands used, all within keys `${name}:*` (a Redis ACL user can be limited to them): SET with PX, ZADD,
 * ZREMRANGEBYSCORE, PEXPIRE (write), ZRANGE, MGET (list), DEL, ZREM (leave).
 */
export class Roster {
  readonly #indexKey: string;

  constructor(
    private readonly link: RedisLink,
    private readonly name: string,
  ) {
    this.#indexKey = `${name}:members`;
  }

  recordKey(nodeId: string): string {
    return `${this.name}:member:${nodeId}`;
  }

  /** Writes `record` to live `ttlMs` from now and indexes it; `now` is this member's clock (epoch ms). */
  async write(record: MemberRecord, ttlMs: number, now: number): Promise<void> {
    const time = Math.round(now);
    await this.link.call((client) =>
      Promise.all([
        client.send("SET", [this.recordKey(record.node_id), JSON.stringify(record), "PX", String(ttlMs)]),
        client.send("ZADD", [this.#indexKey, String(time), record.node_id]),
        client.send("ZREMRANGEBYSCORE", [this.#indexKey, "-inf", `(${time - INDEX_GRACE_MS}`]),
        client.send("PEXPIRE", [this.#indexKey, String(INDEX_GRACE_MS)]),
      ]),
    );
  }

  /** The live records, sorted by node id; a value under a member key that is not a record is left out. */
  async read(): Promise<MemberRecord[]> {
    const values = await this.link.call(async (client) => {
      const ids: unknown = await client.send("ZRANGE", [this.#indexKey, "0", String(MAX_MEMBERS - 1)]);
      const valid = Array.isArray(ids) ? ids.filter((id): id is string => typeof id === "string" && isNodeId(id)) : [];
      const texts = valid.length === 0 ? [] : await client.mget(...valid.map((id) => this.recordKey(id)));
      return valid.map((id, i) => [id, texts[i] ?? null] as const);
    });
    const records: MemberRecord[] = [];
    for (const [id, text] of values) {
      const record = text === null ? null : parseRecord(text);
      if (record !== null && record.node_id === id) records.push(record);
    }
    return records.sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0));
  }

  async remove(nodeId: string): Promise<void> {
    await this.link.call((client) => Promise.all([client.send("DEL", [this.recordKey(nodeId)]), client.send("ZREM", [this.#indexKey, nodeId])]));
  }
}

// One edge worker thread as the main thread holds it, and questions put to every worker at once (a metrics scrape,
// a cancel's registry lookup, a withdrawal), each answered by all, by their exits, or by a deadline.
import type { Worker } from "node:worker_threads";
import type { ToWorker } from "./messages.ts";
import type { TunnelLease } from "../supervisor/types.ts";

/** One worker thread and the leases the supervisor holds for its connections. */
export class Link {
  readonly leases = new Map<number, TunnelLease>();
  drained: Promise<void> | null = null;
  /** It said it listens: it accepts clients. */
  listening = false;
  readonly startedAt = performance.now();

  constructor(
    readonly index: number,
    readonly worker: Worker,
  ) {}

  post(message: ToWorker): void {
    this.worker.postMessage(message);
  }
}

type Round = { waiting: Set<Link>; items: unknown[]; done: (items: unknown[]) => void; timer: ReturnType<typeof setTimeout> };

/** A worker that has not answered by then is stuck (a bug); a scrape, a cancel or a stop goes on without it. */
export const ROUND_DEADLINE_MS = 2000;

export class Rounds {
  private readonly rounds = new Map<number, Round>();
  private nextSeq = 0;

  constructor(private readonly stuck: (question: string, missing: number) => void) {}

  /** Posts `question` to every link; resolves with the answers that came (a link that exits answers nothing). */
  ask(links: readonly Link[], question: (q: number) => ToWorker): Promise<unknown[]> {
    if (links.length === 0) return Promise.resolve([]);
    const q = ++this.nextSeq;
    return new Promise((done) => {
      const timer = setTimeout(() => {
        this.stuck(question(q).t, this.rounds.get(q)?.waiting.size ?? 0);
        this.finish(q);
      }, ROUND_DEADLINE_MS);
      this.rounds.set(q, { waiting: new Set(links), items: [], done, timer });
      for (const link of links) link.post(question(q));
    });
  }

  /** `link`'s answer to round `q` (no item when it exited). */
  answer(q: number, link: Link, item?: unknown): void {
    const round = this.rounds.get(q);
    if (round === undefined || !round.waiting.delete(link)) return;
    if (item !== undefined) round.items.push(item);
    if (round.waiting.size === 0) this.finish(q);
  }

  /** `link` is gone: every round waiting for it stops waiting. */
  forget(link: Link): void {
    for (const q of [...this.rounds.keys()]) this.answer(q, link);
  }

  private finish(q: number): void {
    const round = this.rounds.get(q);
    if (round === undefined) return;
    this.rounds.delete(q);
    clearTimeout(round.timer);
    round.done(round.items);
  }
}

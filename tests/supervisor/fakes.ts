// Test doubles for the supervisor's seams: a manual clock, a scripted spawner and a port probe the test controls.
import type { Clock, Timer } from "../../src/clock.ts";
import type { ChildExit, ChildHandle, PortProbe, Spawner } from "../../src/supervisor/types.ts";

export class FakeClock implements Clock {
  private time = 1_000_000;
  private timers: { at: number; callback: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.time;
  }

  after(ms: number, callback: () => void): Timer {
    const timer = { at: this.time + ms, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Moves time forward, firing due timers in order and letting promise chains run between them. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.time = due.at;
      due.cancelled = true;
      due.callback();
    }
    this.time = end;
    await settle();
  }

  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}

/** Lets every queued promise continuation run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeChild implements ChildHandle {
  readonly exited: Promise<ChildExit>;
  readonly signals: string[] = [];
  private resolveExit!: (exit: ChildExit) => void;
  alive = true;

  constructor(
    readonly pid: number,
    readonly argv: readonly string[],
    readonly emit: (line: string) => void,
    private readonly diesOn: readonly string[],
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  get port(): number {
    return Number(this.argv[this.argv.indexOf("--url") + 1]?.split(":")[1]);
  }

  kill(signal: "SIGTERM" | "SIGKILL"): void {
    this.signals.push(signal);
    if (this.diesOn.includes(signal)) this.exit({ code: null, signal });
  }

  exit(exit: ChildExit = { code: 1, signal: null }): void {
    if (!this.alive) return;
    this.alive = false;
    this.resolveExit(exit);
  }
}

export class FakeSpawner implements Spawner {
  readonly children: FakeChild[] = [];
  /** Signals a child dies of; cloudflared dies at once on SIGTERM. */
  diesOn: string[] = ["SIGTERM", "SIGKILL"];
  failWith: Error | null = null;
  onSpawn: (child: FakeChild) => void = () => undefined;
  private nextPid = 100;

  spawn(argv: readonly string[], onLine: (line: string) => void): ChildHandle {
    if (this.failWith) throw this.failWith;
    const child = new FakeChild(this.nextPid++, argv, onLine, this.diesOn);
    this.children.push(child);
    this.onSpawn(child);
    return child;
  }

  get alive(): FakeChild[] {
    return this.children.filter((c) => c.alive);
  }
}

export class FakeProbe implements PortProbe {
  readonly listening = new Set<number>();
  readonly busy = new Set<number>();
  checks = 0;

  async isListening(port: number): Promise<boolean> {
    this.checks++;
    return this.listening.has(port);
  }

  isHeld(port: number): boolean {
    return this.busy.has(port);
  }
}

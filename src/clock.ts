// Time as the supervisor and the edge see it: now() and timers, injected so tests can use a manual clock.
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  after(ms: number, callback: () => void): Timer;
}

/** The longest delay setTimeout honours; Bun fires longer ones after ~1 ms (with a TimeoutOverflowWarning). */
export const MAX_TIMER_STEP_MS = 2 ** 31 - 1;

/** Where timers are set: setTimeout, or a test's own record of what was asked. */
export interface Scheduler {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const TIMERS: Scheduler = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A timer for any delay: delays above `maxStepMs` are waited out in steps, so `--idle-timeout 720h` means 30 days
 * rather than the 1 ms a clamped setTimeout would give. (Steps only ever fire late, so the sum is never short.)
 */
export function after(ms: number, callback: () => void, maxStepMs = MAX_TIMER_STEP_MS, scheduler = TIMERS): Timer {
  let handle: unknown;
  const arm = (remaining: number) => {
    const step = Math.min(Math.max(remaining, 0), maxStepMs);
    handle = scheduler.set(() => (remaining > step ? arm(remaining - step) : callback()), step);
  };
  arm(ms);
  return { cancel: () => scheduler.clear(handle) };
}

export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  after: (ms, callback) => after(ms, callback),
};

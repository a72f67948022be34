// Time as the supervisor and the edge see it: now() and timers, injected so tests can use a manual clock.
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  after(ms: number, callback: () => void): Timer;
}

/** The longest delay setTimeout honours; Bun fires longer ones after ~1 ms (DESIGN §6). */
export const MAX_TIMER_STEP_MS = 2 ** 31 - 1;

/**
 * A timer for any delay: delays above `maxStepMs` are waited out in steps, so `--idle-timeout 720h` means 30 days
 * rather than the 1 ms a clamped setTimeout would give.
 */
export function after(ms: number, callback: () => void, maxStepMs = MAX_TIMER_STEP_MS): Timer {
  const deadline = performance.now() + ms;
  let handle: ReturnType<typeof setTimeout>;
  const arm = (remaining: number) => {
    handle = setTimeout(() => {
      const left = deadline - performance.now();
      if (left > 0 && remaining > maxStepMs) arm(left);
      else callback();
    }, Math.min(Math.max(remaining, 0), maxStepMs));
  };
  arm(ms);
  return { cancel: () => clearTimeout(handle) };
}

export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  after: (ms, callback) => after(ms, callback),
};

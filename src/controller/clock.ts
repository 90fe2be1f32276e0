/**
 * The one source of time for the controller loop. Everything that waits (work queue backoff,
 * delayed requeues, resync ticks, shutdown deadlines) asks a `Clock`, so tests and benches can
 * drive time with `ManualClock` instead of sleeping.
 */

declare const timerHandleBrand: unique symbol;

/** Opaque: only the clock that issued a handle can cancel it. */
export type TimerHandle = { readonly [timerHandleBrand]: true };

export interface Clock {
  /** Milliseconds on a monotonic timeline with an arbitrary origin: for intervals, not wall-clock time. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancelling a timer that already fired or was already cancelled is a no-op. */
  clearTimeout(handle: TimerHandle): void;
}

/** Node's timers cannot wait longer than this; longer delays would fire after 1 ms instead. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

/** Maps any delay, including NaN and ±Infinity, into the range every `Clock` accepts. */
export function clampDelay(ms: number): number {
  if (Number.isNaN(ms) || ms <= 0) return 0;
  return Math.min(ms, MAX_TIMER_DELAY_MS);
}

/**
 * Real time. `now()` is `performance.now()` so durations cannot go negative when NTP steps the
 * wall clock. Delays beyond ~24.8 days are clamped rather than firing at once as Node would.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, clampDelay(ms)) as unknown as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout),
};

const MAX_TIMERS_PER_ADVANCE = 100_000;

interface ManualTimer {
  readonly id: number;
  readonly dueAt: number;
  readonly fn: () => void;
}

/**
 * The test and bench clock: time stands still until `advance` moves it. Timers fire in due-time
 * order (ties in the order they were set), each seeing `now()` equal to its own due time.
 */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, ManualTimer>();

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { id, dueAt: this.#now + clampDelay(ms), fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as unknown as number);
  }

  /** Timers set and not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, synchronously firing every timer that falls due on the way,
   * including timers those timers set inside the window. Promise continuations do not run in
   * between; use `advanceAsync` when async code must react before later timers fire.
   */
  advance(ms: number): void {
    const target = this.#now + Math.max(0, ms);
    let fired = 0;
    for (let timer = this.#nextDue(target); timer; timer = this.#nextDue(target)) {
      this.#fire(timer, ++fired);
    }
    this.#now = target;
  }

  /**
   * Like `advance`, but lets pending promise work settle before each timer fires and once at the
   * end, so a handler that resolves and schedules a retry inside the window sees that retry fire.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.#now + Math.max(0, ms);
    await settle();
    let fired = 0;
    for (let timer = this.#nextDue(target); timer; timer = this.#nextDue(target)) {
      this.#fire(timer, ++fired);
      await settle();
    }
    this.#now = target;
  }

  #fire(timer: ManualTimer, firedInThisAdvance: number): void {
    // A timer that re-arms itself with 0 ms would otherwise hang the test until its timeout.
    if (firedInThisAdvance > MAX_TIMERS_PER_ADVANCE) {
      throw new Error(
        `ManualClock: over ${MAX_TIMERS_PER_ADVANCE} timers fired in one advance; a 0 ms timer loop?`,
      );
    }
    this.#timers.delete(timer.id);
    this.#now = timer.dueAt;
    timer.fn();
  }

  #nextDue(limit: number): ManualTimer | undefined {
    let next: ManualTimer | undefined;
    for (const timer of this.#timers.values()) {
      // Map iteration follows insertion order: keeping the first of equal due times keeps ties in set order.
      if (timer.dueAt <= limit && (next === undefined || timer.dueAt < next.dueAt)) next = timer;
    }
    return next;
  }
}

/** A macrotask boundary: every promise continuation queued so far has run by the time it resolves. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The keyed work queue between the event sources and the reconcilers, after client-go's workqueue
 * (dirty set + processing set) with controller-runtime's reconcile-result handling.
 *
 * Guarantees:
 * - a key added many times before it runs, runs once;
 * - a key is never handled by two workers at once; a key added while its handler runs, runs once more after;
 * - at most `concurrency` handlers run at once, taking keys in the order they were first added;
 * - what happens after a run is decided here, from the handler's `ReconcileResult`, and reported
 *   once through `onOutcome`. The queue itself never logs.
 */
import { clampDelay, systemClock, type Clock, type TimerHandle } from './clock.js';

/** What a reconcile asks the queue to do next with its key. */
export type ReconcileResult =
  /** In sync: forget the key's backoff until the next event. */
  | { readonly type: 'done' }
  /** Look again after `ms` even without an event; forgets backoff. `ms <= 0` still waits for a 0 ms timer. */
  | { readonly type: 'requeueAfter'; readonly ms: number }
  /** A failure worth retrying: requeue with the key's exponential backoff. */
  | { readonly type: 'retry'; readonly error: unknown }
  /** A failure retries cannot fix (invalid spec, conflict needing a human): no requeue until next event. */
  | { readonly type: 'terminal'; readonly error: unknown };

export type ReconcileResultType = ReconcileResult['type'];

/** Builders, so handlers read `return ReconcileResult.retry(err)`. */
export const ReconcileResult = {
  done: (): ReconcileResult => ({ type: 'done' }),
  requeueAfter: (ms: number): ReconcileResult => ({ type: 'requeueAfter', ms }),
  retry: (error: unknown): ReconcileResult => ({ type: 'retry', error }),
  terminal: (error: unknown): ReconcileResult => ({ type: 'terminal', error }),
} as const;

/**
 * Handles one key. The signal aborts only when `shutdown` gives up waiting; a handler should then
 * stop promptly. Throwing (or rejecting) counts as `retry` with the thrown value.
 */
export type ReconcileHandler<K extends string> = (key: K, signal: AbortSignal) => Promise<ReconcileResult>;

/** One finished handler run, for logging and metrics. */
export interface ReconcileOutcome<K extends string> {
  readonly key: K;
  readonly result: ReconcileResult;
  /** Handler run time, by the queue's clock. */
  readonly durationMs: number;
  /** Time the key waited between being added and its handler starting. */
  readonly waitMs: number;
  /** Consecutive `retry` results before this run; 0 on a first attempt or after any other result. */
  readonly retries: number;
  /** Delay before the queue runs the key again because of this result; absent when it will not. */
  readonly requeueInMs?: number;
}

export interface BackoffOptions {
  /** Delay before the first retry. Default 50. */
  readonly baseMs?: number;
  /** Ceiling for any retry delay. Default 300 000 (5 min). */
  readonly maxMs?: number;
  /** Growth per consecutive failure. Default 2. */
  readonly factor?: number;
  /**
   * Spreads each delay uniformly over ±jitter × delay (still capped at `maxMs`) so keys that failed
   * together do not retry in lockstep. Default 0; must be in [0, 1).
   */
  readonly jitter?: number;
}

export interface WorkQueueOptions<K extends string> {
  /** Maximum handlers running at once; a positive integer. */
  readonly concurrency: number;
  readonly handler: ReconcileHandler<K>;
  readonly clock?: Clock;
  readonly backoff?: BackoffOptions;
  /** Source of jitter, in [0, 1). Default `Math.random`; inject to make jittered delays deterministic. */
  readonly random?: () => number;
  /**
   * Called once per handler completion, after the queue has decided the requeue. It must not throw:
   * an error thrown here is re-raised as an uncaught exception, since hiding it would hide a bug.
   */
  readonly onOutcome?: (outcome: ReconcileOutcome<K>) => void;
}

export interface ShutdownOptions {
  /** How long to wait for running handlers before aborting their signal. `Infinity` waits for ever. */
  readonly drainTimeoutMs: number;
}

const DEFAULT_BACKOFF = { baseMs: 50, maxMs: 300_000, factor: 2, jitter: 0 } as const;

interface DelayedAdd {
  readonly dueAt: number;
  readonly handle: TimerHandle;
}

export class WorkQueue<K extends string> {
  readonly #concurrency: number;
  readonly #handler: ReconcileHandler<K>;
  readonly #clock: Clock;
  readonly #backoff: Required<BackoffOptions>;
  readonly #random: () => number;
  readonly #onOutcome: ((outcome: ReconcileOutcome<K>) => void) | undefined;

  /** Keys waiting to start, in first-add order; `#head` avoids O(n) shifts. */
  #order: K[] = [];
  #head = 0;
  /** Every key that must run again: waiting in `#order`, or re-added while it runs (then not in `#order`). */
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  /** When each dirty key was first added, for `waitMs`. */
  readonly #addedAt = new Map<K, number>();
  readonly #delayed = new Map<K, DelayedAdd>();
  readonly #failures = new Map<K, number>();

  #dispatchScheduled = false;
  #totalAdds = 0;
  #totalRetries = 0;
  #idleWaiters: (() => void)[] = [];
  #shutdown: Promise<boolean> | undefined;
  #onDrained: (() => void) | undefined;
  readonly #abort = new AbortController();

  constructor(options: WorkQueueOptions<K>) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${options.concurrency}`);
    }
    const backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    if (!(backoff.baseMs > 0 && backoff.maxMs >= backoff.baseMs && backoff.factor >= 1)) {
      throw new RangeError('backoff needs baseMs > 0, maxMs >= baseMs and factor >= 1');
    }
    if (!(backoff.jitter >= 0 && backoff.jitter < 1)) {
      throw new RangeError(`backoff.jitter must be in [0, 1), got ${backoff.jitter}`);
    }
    this.#concurrency = options.concurrency;
    this.#handler = options.handler;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = backoff;
    this.#random = options.random ?? Math.random;
    this.#onOutcome = options.onOutcome;
  }

  /** Keys waiting to run, including keys re-added while their handler runs. */
  get depth(): number {
    return this.#dirty.size;
  }

  /** Handlers running now. */
  get processing(): number {
    return this.#processing.size;
  }

  /** Keys with a delayed add pending (backoff, `requeueAfter` or `addAfter`). */
  get delayed(): number {
    return this.#delayed.size;
  }

  /** Adds that made a key dirty; repeats absorbed by dedup are not counted. */
  get totalAdds(): number {
    return this.#totalAdds;
  }

  /** Handler runs that ended in `retry`, thrown errors included. */
  get totalRetries(): number {
    return this.#totalRetries;
  }

  get isShuttingDown(): boolean {
    return this.#shutdown !== undefined;
  }

  /** Queues `key` to run as soon as a worker is free. Ignored once shutdown has begun. */
  add(key: K): void {
    if (this.#shutdown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#addedAt.set(key, this.#clock.now());
    this.#totalAdds++;
    // A running key is pushed to the back when its handler finishes, never beside itself.
    if (this.#processing.has(key)) return;
    this.#order.push(key);
    this.#scheduleDispatch();
  }

  /**
   * Adds `key` after `ms`. If the key already has a delayed add, the earlier one is kept. A run of
   * the key cancels its pending delayed add: that run re-reads everything, and its own result says
   * when to look again.
   */
  addAfter(key: K, ms: number): void {
    if (this.#shutdown) return;
    const delay = clampDelay(ms);
    if (delay === 0) this.add(key);
    else this.#addLater(key, delay);
  }

  /** Always via a timer, even for 0 ms, so a key requeued on every run cannot starve the event loop. */
  #addLater(key: K, delay: number): void {
    const dueAt = this.#clock.now() + delay;
    const pending = this.#delayed.get(key);
    if (pending) {
      if (pending.dueAt <= dueAt) return;
      this.#clock.clearTimeout(pending.handle);
    }
    const handle = this.#clock.setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delay);
    this.#delayed.set(key, { dueAt, handle });
  }

  /** Resolves when no key is waiting or running. Delayed adds still pending do not count as work. */
  whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops taking work: later adds are ignored, waiting keys and delayed adds are dropped (a restart
   * resyncs every key anyway), and running handlers get up to `drainTimeoutMs` to finish. After that
   * their signal is aborted. Resolves true if every handler finished in time. Repeat calls share
   * the first call's result.
   */
  shutdown(options: ShutdownOptions): Promise<boolean> {
    this.#shutdown ??= this.#beginShutdown(options.drainTimeoutMs);
    return this.#shutdown;
  }

  #beginShutdown(drainTimeoutMs: number): Promise<boolean> {
    for (const { handle } of this.#delayed.values()) this.#clock.clearTimeout(handle);
    this.#delayed.clear();
    this.#dirty.clear();
    this.#addedAt.clear();
    this.#order = [];
    this.#head = 0;
    this.#notifyIfIdle();
    if (this.#processing.size === 0) return Promise.resolve(true);

    return new Promise<boolean>((resolve) => {
      let deadline: TimerHandle | undefined;
      this.#onDrained = () => {
        if (deadline !== undefined) this.#clock.clearTimeout(deadline);
        resolve(true);
      };
      if (drainTimeoutMs !== Number.POSITIVE_INFINITY) {
        deadline = this.#clock.setTimeout(() => {
          this.#onDrained = undefined;
          this.#abort.abort(new Error('work queue shutdown: drain timeout elapsed'));
          resolve(false);
        }, clampDelay(drainTimeoutMs));
      }
    });
  }

  #scheduleDispatch(): void {
    // Deferred to a microtask so a burst of synchronous adds is deduplicated before anything runs.
    if (this.#dispatchScheduled) return;
    this.#dispatchScheduled = true;
    queueMicrotask(() => {
      this.#dispatchScheduled = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (!this.#shutdown && this.#processing.size < this.#concurrency && this.#head < this.#order.length) {
      const key = this.#order[this.#head++] as K;
      this.#compactOrder();
      this.#dirty.delete(key);
      this.#processing.add(key);
      void this.#run(key);
    }
  }

  #compactOrder(): void {
    if (this.#head === this.#order.length) {
      this.#order = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Never rejects: every failure path ends in a `ReconcileResult`. */
  async #run(key: K): Promise<void> {
    const startedAt = this.#clock.now();
    const waitMs = startedAt - (this.#addedAt.get(key) ?? startedAt);
    this.#addedAt.delete(key);
    this.#cancelDelayed(key);
    const retries = this.#failures.get(key) ?? 0;

    let result: ReconcileResult;
    try {
      result = validResult(await this.#handler(key, this.#abort.signal));
    } catch (error: unknown) {
      result = ReconcileResult.retry(error);
    }

    const requeueInMs = this.#decideRequeue(key, result, retries);
    const outcome: ReconcileOutcome<K> = {
      key,
      result,
      durationMs: this.#clock.now() - startedAt,
      waitMs,
      retries,
      ...(requeueInMs === undefined ? {} : { requeueInMs }),
    };
    try {
      this.#onOutcome?.(outcome);
    } catch (error: unknown) {
      queueMicrotask(() => {
        throw error;
      });
    }
    this.#release(key);
  }

  /** Applies the result's consequences for backoff and requeueing; returns the requeue delay, if any. */
  #decideRequeue(key: K, result: ReconcileResult, retries: number): number | undefined {
    if (result.type === 'retry') {
      this.#totalRetries++;
      this.#failures.set(key, retries + 1);
    } else {
      this.#failures.delete(key);
    }
    if (this.#shutdown) return undefined;
    switch (result.type) {
      case 'done':
      case 'terminal':
        return undefined;
      case 'requeueAfter': {
        const delay = clampDelay(result.ms);
        this.#addLater(key, delay);
        return delay;
      }
      case 'retry': {
        const delay = this.#backoffDelay(retries);
        this.#addLater(key, delay);
        return delay;
      }
    }
  }

  #backoffDelay(retries: number): number {
    const { baseMs, maxMs, factor, jitter } = this.#backoff;
    const delay = Math.min(baseMs * factor ** retries, maxMs);
    if (jitter === 0) return delay;
    const spread = delay * jitter * (2 * this.#random() - 1);
    return Math.min(Math.max(0, delay + spread), maxMs);
  }

  #release(key: K): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) this.#order.push(key);
    // The freed slot goes to the next waiting key, whether or not this one came back.
    this.#scheduleDispatch();
    if (this.#processing.size === 0 && this.#onDrained) {
      const onDrained = this.#onDrained;
      this.#onDrained = undefined;
      onDrained();
    }
    this.#notifyIfIdle();
  }

  #cancelDelayed(key: K): void {
    const pending = this.#delayed.get(key);
    if (!pending) return;
    this.#clock.clearTimeout(pending.handle);
    this.#delayed.delete(key);
  }

  #isIdle(): boolean {
    return this.#dirty.size === 0 && this.#processing.size === 0;
  }

  #notifyIfIdle(): void {
    if (!this.#isIdle() || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

const RESULT_TYPES: ReadonlySet<string> = new Set<ReconcileResultType>([
  'done',
  'requeueAfter',
  'retry',
  'terminal',
]);

/** Guards against handlers that bypass the types (e.g. resolve `undefined`): retried, not crashed on. */
function validResult(value: unknown): ReconcileResult {
  if (
    typeof value === 'object' &&
    value !== null &&
    RESULT_TYPES.has((value as { type?: unknown }).type as string)
  ) {
    return value as ReconcileResult;
  }
  return ReconcileResult.retry(new TypeError('reconcile handler returned an invalid ReconcileResult'));
}

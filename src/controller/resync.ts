/**
 * The periodic full resync: the safety net for missed or dropped Docker events. Each subscriber
 * gets its own tick chain on the injected clock, so one `ManualClock` drives resync and the work
 * queue together in tests.
 */
import { Observable } from 'rxjs';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

export interface ResyncOptions {
  /** Mean time between ticks; positive and finite. */
  readonly periodMs: number;
  /**
   * Each delay is drawn uniformly from periodMs × (1 ± jitterFraction), so replicas started together
   * do not all relist at the same instant. Default 0.1; must be in [0, 1).
   */
  readonly jitterFraction?: number;
  readonly clock?: Clock;
  /** In [0, 1). Default `Math.random`; inject to make delays deterministic. */
  readonly random?: () => number;
}

/**
 * Emits once per jittered period, starting one period after subscription (the controller's
 * initial list covers time zero; `startWith(undefined)` if a caller wants a tick then). Never
 * completes or errors; unsubscribing cancels the pending timer.
 */
export function resyncTicks(options: ResyncOptions): Observable<void> {
  const { periodMs, jitterFraction = 0.1, clock = systemClock, random = Math.random } = options;
  if (!(Number.isFinite(periodMs) && periodMs > 0)) {
    throw new RangeError(`periodMs must be positive and finite, got ${periodMs}`);
  }
  if (!(jitterFraction >= 0 && jitterFraction < 1)) {
    throw new RangeError(`jitterFraction must be in [0, 1), got ${jitterFraction}`);
  }
  const nextDelay = (): number => {
    // Clamped so a misbehaving random source cannot push a delay outside the documented bounds.
    const unit = Math.min(Math.max(random(), 0), 1);
    return periodMs * (1 + jitterFraction * (2 * unit - 1));
  };

  return new Observable<void>((subscriber) => {
    let handle: TimerHandle | undefined;
    const schedule = (): void => {
      handle = clock.setTimeout(() => {
        handle = undefined;
        subscriber.next();
        // A subscriber may unsubscribe from inside next(); then there is nothing to reschedule for.
        if (!subscriber.closed) schedule();
      }, nextDelay());
    };
    schedule();
    return () => {
      if (handle !== undefined) clock.clearTimeout(handle);
    };
  });
}

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/controller/clock.js';
import { resyncTicks } from '../../src/controller/resync.js';

/** Subscribes and records the clock time of every tick until `untilMs`. */
function tickTimes(
  options: { periodMs: number; jitterFraction?: number; random?: () => number },
  untilMs: number,
) {
  const clock = new ManualClock();
  const times: number[] = [];
  const subscription = resyncTicks({ ...options, clock }).subscribe(() => times.push(clock.now()));
  clock.advance(untilMs);
  subscription.unsubscribe();
  return { times, clock };
}

const gaps = (times: readonly number[]): number[] => times.map((t, i) => t - (times[i - 1] ?? 0));

describe('resyncTicks', () => {
  it.each([
    ['the lower bound', 0, 54_000],
    ['the period', 0.5, 60_000],
    ['near the upper bound', 0.999_999, 65_999.988],
  ])('random at %s gives delay %s → %s ms with 10%% jitter', (_name, random, delay) => {
    const { times } = tickTimes({ periodMs: 60_000, random: () => random }, 3 * 66_000);
    expect(gaps(times)[0]).toBeCloseTo(delay, 3);
    for (const gap of gaps(times)) expect(gap).toBeCloseTo(delay, 3);
  });

  it('keeps every delay within period ± jitter for an arbitrary random sequence', () => {
    let seed = 42;
    // A fixed linear congruential sequence: arbitrary but reproducible.
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const { times } = tickTimes({ periodMs: 1_000, jitterFraction: 0.25, random }, 200_000);
    expect(times.length).toBeGreaterThan(150);
    for (const gap of gaps(times)) {
      expect(gap).toBeGreaterThanOrEqual(750);
      expect(gap).toBeLessThan(1_250);
    }
    expect(new Set(gaps(times)).size).toBeGreaterThan(100);
  });

  it('emits exactly on the period without jitter, first tick one period after subscribing', () => {
    const { times } = tickTimes({ periodMs: 30_000, jitterFraction: 0 }, 100_000);
    expect(times).toEqual([30_000, 60_000, 90_000]);
  });

  it('clamps a random source that strays outside [0, 1)', () => {
    const values = [-3, 7];
    const { times } = tickTimes({ periodMs: 100, random: () => values.shift() ?? 0.5 }, 400);
    expect(gaps(times)).toEqual([90, 110, 100, 100]);
  });

  it('cancels its timer on unsubscribe, including from inside a tick', () => {
    const clock = new ManualClock();
    let count = 0;
    const subscription = resyncTicks({ periodMs: 100, jitterFraction: 0, clock }).subscribe(() => {
      count++;
      if (count === 2) subscription.unsubscribe();
    });
    clock.advance(1_000);
    expect(count).toBe(2);
    expect(clock.pendingTimers).toBe(0);

    const other = resyncTicks({ periodMs: 100, clock }).subscribe(() => undefined);
    expect(clock.pendingTimers).toBe(1);
    other.unsubscribe();
    expect(clock.pendingTimers).toBe(0);
  });

  it('gives each subscriber its own schedule', () => {
    const clock = new ManualClock();
    const ticks$ = resyncTicks({ periodMs: 100, jitterFraction: 0, clock });
    const a: number[] = [];
    const b: number[] = [];
    const subA = ticks$.subscribe(() => a.push(clock.now()));
    clock.advance(50);
    const subB = ticks$.subscribe(() => b.push(clock.now()));
    clock.advance(200);
    subA.unsubscribe();
    subB.unsubscribe();
    expect(a).toEqual([100, 200]);
    expect(b).toEqual([150, 250]);
  });

  it.each([
    [{ periodMs: 0 }],
    [{ periodMs: Number.POSITIVE_INFINITY }],
    [{ periodMs: 1_000, jitterFraction: 1 }],
    [{ periodMs: 1_000, jitterFraction: -0.1 }],
  ])('rejects %o', (options) => {
    expect(() => resyncTicks(options)).toThrow(RangeError);
  });
});

describe('ManualClock', () => {
  it('fires timers in due order, ties in set order, including timers set by timers inside the window', () => {
    const clock = new ManualClock(1_000);
    const log: string[] = [];
    clock.setTimeout(() => log.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => {
      log.push(`a@${clock.now()}`);
      clock.setTimeout(() => log.push(`c@${clock.now()}`), 5);
      clock.setTimeout(() => log.push(`late@${clock.now()}`), 100);
    }, 10);
    clock.setTimeout(() => log.push(`b2@${clock.now()}`), 20);
    const cancelled = clock.setTimeout(() => log.push('cancelled'), 1);
    clock.clearTimeout(cancelled);

    clock.advance(30);
    expect(log).toEqual(['a@1010', 'c@1015', 'b@1020', 'b2@1020']);
    expect(clock.now()).toBe(1_030);
    expect(clock.pendingTimers).toBe(1);
  });

  it('throws instead of hanging on a timer that keeps re-arming itself with 0 ms', () => {
    const clock = new ManualClock();
    const rearm = (): void => void clock.setTimeout(rearm, 0);
    rearm();
    expect(() => clock.advance(1)).toThrow(/timer loop/);
  });
});

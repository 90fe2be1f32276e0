import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/controller/clock.js';
import {
  ReconcileResult,
  WorkQueue,
  type ReconcileHandler,
  type ReconcileOutcome,
  type WorkQueueOptions,
} from '../../src/controller/workqueue.js';

type Key = `svc/${string}`;

/** Lets every promise continuation queued so far run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

interface Call {
  readonly key: Key;
  readonly at: number;
}

function harness(
  handler: ReconcileHandler<Key>,
  options: Partial<Omit<WorkQueueOptions<Key>, 'handler' | 'clock' | 'onOutcome'>> = {},
) {
  const clock = new ManualClock();
  const calls: Call[] = [];
  const outcomes: ReconcileOutcome<Key>[] = [];
  const queue = new WorkQueue<Key>({
    concurrency: 1,
    ...options,
    clock,
    handler: (key, signal) => {
      calls.push({ key, at: clock.now() });
      return handler(key, signal);
    },
    onOutcome: (outcome) => outcomes.push(outcome),
  });
  return { clock, calls, outcomes, queue };
}

const always =
  (result: ReconcileResult): ReconcileHandler<Key> =>
  () =>
    Promise.resolve(result);

describe('WorkQueue dedup and per-key exclusivity', () => {
  it('runs a key added 100 times before it starts once', async () => {
    const { calls, queue } = harness(always(ReconcileResult.done()));
    for (let i = 0; i < 100; i++) queue.add('svc/a');
    expect(queue.depth).toBe(1);
    expect(queue.totalAdds).toBe(1);
    await queue.whenIdle();
    expect(calls).toEqual([{ key: 'svc/a', at: 0 }]);
  });

  it('never runs a key twice at once, and re-runs it exactly once when re-added while running', async () => {
    const gates: Deferred<ReconcileResult>[] = [];
    let active = 0;
    let maxActive = 0;
    const { calls, queue } = harness(
      async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        const gate = deferred<ReconcileResult>();
        gates.push(gate);
        const result = await gate.promise;
        active--;
        return result;
      },
      { concurrency: 4 },
    );

    queue.add('svc/a');
    await settle();
    expect(calls).toHaveLength(1);
    for (let i = 0; i < 5; i++) queue.add('svc/a');
    await settle();
    expect(calls).toHaveLength(1);
    expect(queue.processing).toBe(1);
    expect(queue.depth).toBe(1);

    gates[0]?.resolve(ReconcileResult.done());
    await settle();
    expect(calls).toHaveLength(2);
    gates[1]?.resolve(ReconcileResult.done());
    await queue.whenIdle();
    expect(calls).toHaveLength(2);
    expect(maxActive).toBe(1);
  });

  it('puts a key re-added while running behind keys that were already waiting', async () => {
    const gate = deferred<ReconcileResult>();
    const { calls, queue } = harness(async (key) =>
      key === 'svc/a' && calls.length === 1 ? gate.promise : ReconcileResult.done(),
    );
    queue.add('svc/a');
    await settle();
    queue.add('svc/b');
    queue.add('svc/a');
    queue.add('svc/c');
    gate.resolve(ReconcileResult.done());
    await queue.whenIdle();
    expect(calls.map((c) => c.key)).toEqual(['svc/a', 'svc/b', 'svc/c', 'svc/a']);
  });
});

describe('WorkQueue concurrency', () => {
  it.each([1, 3, 8])('runs at most %i handlers at once, in first-add order', async (concurrency) => {
    const gates = new Map<Key, Deferred<ReconcileResult>>();
    let active = 0;
    let maxActive = 0;
    const { calls, queue } = harness(
      async (key) => {
        active++;
        maxActive = Math.max(maxActive, active);
        const gate = deferred<ReconcileResult>();
        gates.set(key, gate);
        const result = await gate.promise;
        active--;
        return result;
      },
      { concurrency },
    );
    const keys = Array.from({ length: 12 }, (_, i): Key => `svc/${i}`);
    for (const key of keys) queue.add(key);
    for (const key of [...keys].reverse()) queue.add(key);

    await settle();
    expect(queue.processing).toBe(concurrency);
    expect(queue.depth).toBe(keys.length - concurrency);
    // Finish one handler at a time, oldest first, until everything has run.
    for (let done = 0; done < keys.length; done++) {
      const key = calls[done]?.key;
      expect(key).toBeDefined();
      gates.get(key as Key)?.resolve(ReconcileResult.done());
      await settle();
      expect(active).toBeLessThanOrEqual(concurrency);
    }
    await queue.whenIdle();
    expect(maxActive).toBe(concurrency);
    expect(calls.map((c) => c.key)).toEqual(keys);
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects concurrency %s', (concurrency) => {
    expect(() => harness(always(ReconcileResult.done()), { concurrency })).toThrow(RangeError);
  });
});

describe('WorkQueue reconcile results', () => {
  it('retries with exponential backoff 50, 100, 200, ... capped at 5 minutes', async () => {
    const { clock, calls, outcomes, queue } = harness(
      always(ReconcileResult.retry(new Error('docker down'))),
    );
    const expected = Array.from({ length: 16 }, (_, i) => Math.min(50 * 2 ** i, 300_000));
    expect(expected.slice(11)).toEqual([102_400, 204_800, 300_000, 300_000, 300_000]);

    queue.add('svc/a');
    await settle();
    for (const [i, delay] of expected.entries()) {
      expect(outcomes[i]).toMatchObject({ retries: i, requeueInMs: delay });
      clock.advance(delay - 1);
      await settle();
      expect(calls).toHaveLength(i + 1);
      clock.advance(1);
      await settle();
      expect(calls).toHaveLength(i + 2);
    }
    const gaps = calls.slice(1).map((c, i) => c.at - (calls[i]?.at ?? 0));
    expect(gaps).toEqual(expected);
    expect(queue.totalRetries).toBe(expected.length + 1);
  });

  it.each([
    ['done', ReconcileResult.done()],
    ['requeueAfter', ReconcileResult.requeueAfter(10_000)],
    ['terminal', ReconcileResult.terminal(new Error('bad spec'))],
  ] as const)('%s forgets the backoff', async (_name, reset) => {
    const script = [
      ReconcileResult.retry('e1'),
      ReconcileResult.retry('e2'),
      ReconcileResult.retry('e3'),
      reset,
      ReconcileResult.retry('e4'),
    ];
    const { clock, outcomes, queue } = harness(() =>
      Promise.resolve(script.shift() ?? ReconcileResult.done()),
    );
    queue.add('svc/a');
    await clock.advanceAsync(50 + 100 + 200);
    expect(outcomes.map((o) => o.retries)).toEqual([0, 1, 2, 3]);
    // A reset result may leave a requeue pending; an event now runs the key at once either way.
    queue.add('svc/a');
    await settle();
    expect(outcomes.map((o) => o.retries)).toEqual([0, 1, 2, 3, 0]);
    expect(outcomes.at(-1)?.requeueInMs).toBe(50);
  });

  it.each([
    ['done', ReconcileResult.done(), undefined],
    ['terminal', ReconcileResult.terminal(new Error('invalid')), undefined],
    ['requeueAfter', ReconcileResult.requeueAfter(30_000), 30_000],
    ['retry', ReconcileResult.retry(new Error('flaky')), 50],
  ] as const)('after %s the key runs again after $2 ms', async (_name, result, requeueInMs) => {
    const script = [result];
    const { clock, calls, outcomes, queue } = harness(() =>
      Promise.resolve(script.shift() ?? ReconcileResult.done()),
    );
    queue.add('svc/a');
    await queue.whenIdle();
    expect(outcomes[0]?.result).toEqual(result);
    expect(outcomes[0]?.requeueInMs).toBe(requeueInMs);
    expect(queue.delayed).toBe(requeueInMs === undefined ? 0 : 1);

    await clock.advanceAsync((requeueInMs ?? 3_600_000) - 1);
    expect(calls).toHaveLength(1);
    await clock.advanceAsync(1);
    expect(calls.map((c) => c.at)).toEqual(requeueInMs === undefined ? [0] : [0, requeueInMs]);
  });

  it('requeueAfter(0) goes through a timer, so it cannot starve the event loop', async () => {
    const { clock, calls, queue } = harness(always(ReconcileResult.requeueAfter(0)));
    queue.add('svc/a');
    await settle();
    await settle();
    expect(calls).toHaveLength(1);
    // advanceAsync(0) would chase the key's 0 ms timers for ever; a synchronous step fires only this one.
    clock.advance(0);
    await settle();
    expect(calls).toHaveLength(2);
    expect(queue.delayed).toBe(1);
  });

  it.each([
    ['a rejected promise', () => Promise.reject(new Error('boom'))],
    [
      'a synchronous throw',
      () => {
        throw new Error('boom');
      },
    ],
  ] as const)('treats %s as retry with that error', async (_name, fail) => {
    const { outcomes, queue } = harness(fail);
    queue.add('svc/a');
    await queue.whenIdle();
    const [outcome] = outcomes;
    expect(outcome?.result.type).toBe('retry');
    expect(outcome?.result.type === 'retry' && outcome.result.error).toEqual(new Error('boom'));
    expect(outcome?.requeueInMs).toBe(50);
    expect(queue.totalRetries).toBe(1);
  });

  it('retries a handler that resolves something that is not a ReconcileResult', async () => {
    const { outcomes, queue } = harness((() =>
      Promise.resolve(undefined)) as unknown as ReconcileHandler<Key>);
    queue.add('svc/a');
    await queue.whenIdle();
    expect(outcomes[0]?.result).toMatchObject({ type: 'retry', error: expect.any(TypeError) as unknown });
  });

  it('reports duration and wait time by the queue clock', async () => {
    const gate = deferred<ReconcileResult>();
    const { clock, outcomes, queue } = harness((key) =>
      key === 'svc/a' ? gate.promise : Promise.resolve(ReconcileResult.done()),
    );
    queue.add('svc/a');
    queue.add('svc/b');
    await settle();
    clock.advance(120);
    gate.resolve(ReconcileResult.done());
    await queue.whenIdle();
    expect(outcomes).toEqual([
      { key: 'svc/a', result: { type: 'done' }, durationMs: 120, waitMs: 0, retries: 0 },
      { key: 'svc/b', result: { type: 'done' }, durationMs: 0, waitMs: 120, retries: 0 },
    ]);
  });

  it('jitters backoff within ±jitter with an injected random source', async () => {
    const randoms = [0, 0.999, 0.5];
    const { clock, outcomes, queue } = harness(always(ReconcileResult.retry('x')), {
      backoff: { jitter: 0.2 },
      random: () => randoms.shift() ?? 0.5,
    });
    queue.add('svc/a');
    await settle();
    await clock.advanceAsync(40);
    await clock.advanceAsync(120);
    const delays = outcomes.map((o) => o.requeueInMs);
    expect(delays[0]).toBe(40);
    expect(delays[1]).toBeCloseTo(119.96);
    expect(delays[2]).toBe(200);
  });
});

describe('WorkQueue delayed adds', () => {
  it('adds a key after the delay', async () => {
    const { clock, calls, queue } = harness(always(ReconcileResult.done()));
    queue.addAfter('svc/a', 1_000);
    expect(queue.delayed).toBe(1);
    await clock.advanceAsync(999);
    expect(calls).toEqual([]);
    await clock.advanceAsync(1);
    expect(calls).toEqual([{ key: 'svc/a', at: 1_000 }]);
  });

  it('keeps the earliest of two delayed adds for one key', async () => {
    const { clock, calls, queue } = harness(always(ReconcileResult.done()));
    queue.addAfter('svc/a', 5_000);
    queue.addAfter('svc/a', 2_000);
    queue.addAfter('svc/a', 3_000);
    await clock.advanceAsync(10_000);
    expect(calls).toEqual([{ key: 'svc/a', at: 2_000 }]);
  });

  it('lets a later immediate add win over a pending delayed one', async () => {
    const { clock, calls, queue } = harness(always(ReconcileResult.done()));
    queue.addAfter('svc/a', 1_000);
    clock.advance(10);
    queue.add('svc/a');
    await clock.advanceAsync(5_000);
    expect(calls).toEqual([{ key: 'svc/a', at: 10 }]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('WorkQueue whenIdle', () => {
  it('resolves at once when nothing is queued or running', async () => {
    const { queue } = harness(always(ReconcileResult.done()));
    await expect(queue.whenIdle()).resolves.toBeUndefined();
  });

  it('resolves only after queued and running work, including re-runs, has finished', async () => {
    const gate = deferred<ReconcileResult>();
    const { calls, queue } = harness(() =>
      calls.length === 1 ? gate.promise : Promise.resolve(ReconcileResult.done()),
    );
    let idle = false;
    queue.add('svc/a');
    queue.whenIdle().then(
      () => (idle = true),
      () => undefined,
    );
    await settle();
    queue.add('svc/a');
    await settle();
    expect(idle).toBe(false);
    gate.resolve(ReconcileResult.done());
    await settle();
    expect(idle).toBe(true);
    expect(calls).toHaveLength(2);
  });

  it('ignores pending delayed adds', async () => {
    const { queue } = harness(always(ReconcileResult.requeueAfter(60_000)));
    queue.add('svc/a');
    await queue.whenIdle();
    expect(queue.delayed).toBe(1);
  });
});

describe('WorkQueue shutdown', () => {
  it('drains in-flight work, drops waiting work and timers, and ignores later adds', async () => {
    const gate = deferred<ReconcileResult>();
    const { clock, calls, outcomes, queue } = harness((key) =>
      key === 'svc/a' ? gate.promise : Promise.resolve(ReconcileResult.done()),
    );
    queue.addAfter('svc/later', 1_000);
    queue.add('svc/a');
    queue.add('svc/b');
    await settle();
    queue.add('svc/a');

    let drained: boolean | undefined;
    queue.shutdown({ drainTimeoutMs: 10_000 }).then(
      (value) => (drained = value),
      () => undefined,
    );
    expect(queue.isShuttingDown).toBe(true);
    expect(queue.depth).toBe(0);
    queue.add('svc/c');
    queue.addAfter('svc/d', 10);
    expect(queue.depth).toBe(0);
    await settle();
    expect(drained).toBeUndefined();

    gate.resolve(ReconcileResult.retry(new Error('still failing')));
    await settle();
    expect(drained).toBe(true);
    await clock.advanceAsync(600_000);
    expect(calls.map((c) => c.key)).toEqual(['svc/a']);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]?.requeueInMs).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
    await expect(queue.whenIdle()).resolves.toBeUndefined();
  });

  it('resolves true at once when nothing is running', async () => {
    const { queue } = harness(always(ReconcileResult.done()));
    await expect(queue.shutdown({ drainTimeoutMs: 0 })).resolves.toBe(true);
  });

  it('aborts the handler signal when the drain timeout elapses and resolves false', async () => {
    let seen: AbortSignal | undefined;
    const { clock, outcomes, queue } = harness(
      (_key, signal) =>
        new Promise<ReconcileResult>((resolve) => {
          seen = signal;
          signal.addEventListener('abort', () => resolve(ReconcileResult.retry(signal.reason)), {
            once: true,
          });
        }),
    );
    queue.add('svc/a');
    await settle();

    let drained: boolean | undefined;
    const shutdown = queue.shutdown({ drainTimeoutMs: 5_000 });
    shutdown.then(
      (value) => (drained = value),
      () => undefined,
    );
    expect(queue.shutdown({ drainTimeoutMs: 1 })).toBe(shutdown);
    await clock.advanceAsync(4_999);
    expect(seen?.aborted).toBe(false);
    expect(drained).toBeUndefined();

    await clock.advanceAsync(1);
    expect(seen?.aborted).toBe(true);
    expect(drained).toBe(false);
    // The aborted handler still completes and is reported, but is not requeued.
    await queue.whenIdle();
    expect(outcomes).toMatchObject([{ key: 'svc/a', result: { type: 'retry' } }]);
    expect(outcomes[0]?.requeueInMs).toBeUndefined();
  });
});

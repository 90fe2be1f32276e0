/**
 * The events stream against the real Redis (and, end to end, a real controller on the real Swarm):
 * the sink turns log lines into stream entries with exactly the agreed fields, the stream is
 * capped, `follow` wakes on new entries, `swarmkeeper events` prints them, and a Redis that is
 * away never holds the controller up.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatEvent, runEvents } from '../../src/cli/commands/events.js';
import type { CliIo } from '../../src/cli/io.js';
import { EventSink, eventFromLogRecord } from '../../src/controller/event-sink.js';
import {
  EVENT_FIELDS,
  RedisEventStream,
  decodeEvent,
  type EventEntry,
  type StoredEvent,
} from '../../src/desired/events.js';
import { KeySpace } from '../../src/desired/keys.js';
import { createRedis } from '../../src/desired/redis-connection.js';
import { assembleController, createControllerLogging, type ControllerApp } from '../../src/main.js';
import { runCli } from '../support/cli.js';
import { ControllerLab } from '../support/controller.js';
import { eventually } from '../support/eventually.js';
import { REDIS_URL, dropPrefix, rawRedis, uniquePrefix } from '../support/lab.js';

const run = promisify(execFile);
const docker = async (...args: string[]): Promise<string> => (await run('docker', args)).stdout.trim();

function entry(overrides: Partial<EventEntry> = {}): EventEntry {
  return {
    ts: new Date().toISOString(),
    level: 'info',
    msg: 'updated',
    kind: 'Service',
    name: 'nginx',
    verb: 'updated',
    durationMs: 4,
    ...overrides,
  };
}

function captureIo(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (text) => stdout.push(text.replace(/\n$/, '')),
    err: (text) => stderr.push(text.replace(/\n$/, '')),
    readStdin: () => Promise.resolve(''),
  };
}

describe('eventFromLogRecord: which log lines become events, and with which fields', () => {
  const time = '2026-11-26T07:31:02.000Z';
  it.each([
    {
      name: 'a drift line keeps kind, name, drift and action',
      line: {
        level: 30,
        time,
        app: 'swarmkeeper',
        kind: 'Service',
        name: 'nginx',
        drift: [{ path: 'spec.replicas', desired: 1, actual: 3, extra: 'dropped' }],
        action: ['update'],
        msg: 'drift detected',
      },
      expected: {
        ts: time,
        level: 'info',
        msg: 'drift detected',
        kind: 'Service',
        name: 'nginx',
        drift: [{ path: 'spec.replicas', desired: 1, actual: 3 }],
        action: ['update'],
      },
    },
    {
      name: 'an action line keeps its verb and duration, and drops every other field',
      line: {
        level: 30,
        time,
        kind: 'Service',
        name: 'nginx',
        verb: 'updated',
        object: 'nginx',
        id: 'abc',
        durationMs: 4,
        detail: { x: 1 },
        msg: 'updated',
      },
      expected: {
        ts: time,
        level: 'info',
        msg: 'updated',
        kind: 'Service',
        name: 'nginx',
        verb: 'updated',
        durationMs: 4,
      },
    },
    {
      name: 'a failed reconcile (warn) keeps its error as the message',
      line: {
        level: 40,
        time,
        kind: 'Service',
        name: 'hub',
        durationMs: 12,
        err: 'engine refused',
        code: 'SK_X',
        msg: 'reconcile failed',
      },
      expected: {
        ts: time,
        level: 'warn',
        msg: 'reconcile failed',
        kind: 'Service',
        name: 'hub',
        durationMs: 12,
        message: 'engine refused',
      },
    },
    {
      name: 'the prune guard (error) keeps its reason',
      line: {
        level: 50,
        time,
        kind: 'Volume',
        name: 'data',
        reason: 'desired set halved',
        msg: 'removal held by the prune guard',
      },
      expected: {
        ts: time,
        level: 'error',
        msg: 'removal held by the prune guard',
        kind: 'Volume',
        name: 'data',
        message: 'desired set halved',
      },
    },
    {
      name: 'a network recreate step is an action on the network',
      line: {
        level: 30,
        time,
        step: 'detach-service',
        network: 'jupyterhub',
        target: 'nginx',
        targetKind: 'Service',
        managed: true,
        result: 'done',
        durationMs: 7,
        msg: 'network recreate step',
      },
      expected: {
        ts: time,
        level: 'info',
        msg: 'network recreate step',
        kind: 'Network',
        name: 'jupyterhub',
        verb: 'detach-service',
        durationMs: 7,
        message: 'Service nginx: done',
      },
    },
    {
      name: 'a quota set for a user is an action',
      line: {
        level: 30,
        time,
        kind: 'User',
        name: 'alice',
        verb: 'updated',
        folder: 'alice',
        hardLimitBytes: 1,
        durationMs: 3,
        msg: 'quota set',
      },
      expected: {
        ts: time,
        level: 'info',
        msg: 'quota set',
        kind: 'User',
        name: 'alice',
        verb: 'updated',
        durationMs: 3,
      },
    },
  ])('$name', ({ line, expected }) => {
    expect(eventFromLogRecord(line)).toEqual(expected);
  });

  it.each([
    {
      name: 'info lines that are neither drift nor action',
      line: { level: 30, kind: 'Service', name: 'x', msg: 'reconciled' },
    },
    { name: 'debug lines', line: { level: 20, kind: 'Service', name: 'x', verb: 'updated', msg: 'updated' } },
    { name: 'lines about no resource', line: { level: 40, err: 'boom', msg: 'docker unavailable' } },
    {
      name: 'a kind that is not a resource kind',
      line: { level: 30, kind: 'reconnected', verb: 'x', name: 'y', msg: 'docker event stream' },
    },
    { name: 'a line that is not an object', line: 'nope' },
  ])('drops $name', ({ line }) => {
    expect(eventFromLogRecord(line)).toBeUndefined();
  });

  it('never carries fields outside the agreed list, whatever the line held', () => {
    const event = eventFromLogRecord({
      level: 50,
      kind: 'Secret',
      name: 's',
      verb: 'created',
      password: 'hunter2',
      spec: { data: 'top secret' },
      secret: 'x',
      token: 'y',
      msg: 'created',
    });
    expect(Object.keys(event ?? {}).every((k) => (EVENT_FIELDS as readonly string[]).includes(k))).toBe(true);
    expect(JSON.stringify(event)).not.toMatch(/hunter2|top secret/);
  });
});

describe('formatEvent', () => {
  const at = (iso: string): StoredEvent => ({ ...entry(), id: '1-0', ts: iso });
  it('prints a drift as path, actual→desired and the action', () => {
    const line = formatEvent({
      ...at('2026-11-26T07:31:02.000Z'),
      msg: 'drift detected',
      drift: [{ path: 'spec.replicas', desired: 1, actual: 3 }],
      action: ['update'],
    });
    expect(line).toMatch(/^\d\d:\d\d:02 Service\/nginx drift spec\.replicas 3→1 → update$/);
  });
  it('prints an action with its duration, and a warning with its message', () => {
    expect(formatEvent(at('2026-11-26T07:31:02.000Z'))).toMatch(/^\d\d:\d\d:02 Service\/nginx updated 4ms$/);
    expect(
      formatEvent({
        id: '1-0',
        ts: '2026-11-26T07:31:02.000Z',
        level: 'warn',
        msg: 'reconcile failed',
        kind: 'Service',
        name: 'nginx',
        durationMs: 12,
        message: 'refused',
      }),
    ).toMatch(/ WARN Service\/nginx reconcile failed 12ms: refused$/);
  });
});

describe('RedisEventStream on the real Redis', () => {
  const prefix = uniquePrefix('events-stream');
  const redis = rawRedis();
  let stream: RedisEventStream;

  beforeAll(async () => {
    stream = new RedisEventStream({
      redis: await createRedis({ url: REDIS_URL, mode: 'cli' }),
      keys: new KeySpace(prefix),
      maxLength: 100,
    });
  });
  afterAll(async () => {
    await stream.close();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('appends in order with exactly the agreed fields, and reads back the newest, filtered', async () => {
    await stream.append([
      entry({ name: 'a', verb: 'created', msg: 'created' }),
      {
        ts: new Date().toISOString(),
        level: 'info',
        kind: 'Service',
        name: 'b',
        msg: 'drift detected',
        drift: [{ path: 'spec.replicas', desired: 1, actual: 3 }],
        action: ['update'],
      },
      entry({ kind: 'Volume', name: 'a' }),
    ]);
    const raw = await redis.xrange(`${prefix}:events`, '-', '+');
    for (const [, fields] of raw) {
      const names = fields.filter((_, i) => i % 2 === 0);
      expect(names.every((n) => (EVENT_FIELDS as readonly string[]).includes(n))).toBe(true);
    }
    const [, driftFields] = raw[1] ?? ['', []];
    expect(decodeEvent('1-0', driftFields)).toMatchObject({
      drift: [{ path: 'spec.replicas', desired: 1, actual: 3 }],
      action: ['update'],
    });
    expect((await stream.range({ count: 10 })).map((e) => `${e.kind}/${e.name}`)).toEqual([
      'Service/a',
      'Service/b',
      'Volume/a',
    ]);
    expect((await stream.range({ count: 10, name: 'a' })).map((e) => e.kind)).toEqual(['Service', 'Volume']);
    expect((await stream.range({ count: 1, kind: 'Service' })).map((e) => e.name)).toEqual(['b']);
  });

  it('keeps about the last maxLength entries', async () => {
    const batch = Array.from({ length: 1_000 }, (_, i) => entry({ name: `n${i}` }));
    await stream.append(batch);
    const length = await redis.xlen(`${prefix}:events`);
    // MAXLEN ~ trims whole radix-tree nodes (100 entries by default), never below the cap.
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThanOrEqual(200);
    const newest = await stream.range({ count: 1 });
    expect(newest[0]?.name).toBe('n999');
  });

  it('finds a filtered entry even when it sits far behind newer ones', async () => {
    await stream.append([entry({ kind: 'Config', name: 'rare' })]);
    await stream.append(Array.from({ length: 90 }, (_, i) => entry({ name: `later${i}` })));
    const found = await stream.range({ count: 5, kind: 'Config' });
    expect(found.map((e) => e.name)).toEqual(['rare']);
  });

  it('follow wakes on new entries and stops when aborted', async () => {
    const stop = new AbortController();
    const seen: StoredEvent[] = [];
    const following = (async () => {
      for await (const event of stream.follow('$', stop.signal)) {
        seen.push(event);
        if (seen.length === 2) stop.abort();
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await stream.append([entry({ name: 'f1' }), entry({ name: 'f2' })]);
    await following;
    expect(seen.map((e) => e.name)).toEqual(['f1', 'f2']);
  });

  it('`events -f` prints the newest then follows, until Ctrl-C (abort) ends it with 0', async () => {
    const io = captureIo();
    const stop = new AbortController();
    const done = runEvents(
      stream,
      io,
      { follow: true, kind: 'svc', name: 'live', output: 'json', limit: 5 },
      stop.signal,
    );
    await stream.append([entry({ name: 'live', msg: 'created', verb: 'created' })]);
    await eventually(() => expect(io.stdout).toHaveLength(1), { timeoutMs: 10_000 });
    await stream.append([entry({ name: 'other' }), entry({ name: 'live' })]);
    await eventually(() => expect(io.stdout).toHaveLength(2), { timeoutMs: 10_000 });
    stop.abort();
    expect(await done).toBe(0);
    expect(io.stdout.map((l) => (JSON.parse(l) as StoredEvent).verb)).toEqual(['created', 'updated']);
  });
});

describe('EventSink when Redis is away', () => {
  it('buffers up to its capacity, drops the oldest and counts them, and never throws or blocks', async () => {
    const appended: EventEntry[] = [];
    const target = {
      ready: false,
      append: (e: readonly EventEntry[]) => Promise.resolve(void appended.push(...e)),
    };
    const dropped: number[] = [];
    const sink = new EventSink({
      capacity: 10,
      flushDelayMs: 1,
      retryDelayMs: 10,
      onDropped: (n) => dropped.push(n),
    });
    sink.attach(target);
    const started = performance.now();
    for (let i = 0; i < 25; i++) {
      sink.write(
        `${JSON.stringify({ level: 30, kind: 'Service', name: `s${i}`, verb: 'updated', msg: 'updated' })}\n`,
      );
    }
    sink.write('not json\n');
    expect(performance.now() - started).toBeLessThan(50);
    expect(sink.pending).toBe(10);
    expect(sink.dropped).toBe(15);
    target.ready = true;
    await eventually(() => expect(appended).toHaveLength(10), { timeoutMs: 5_000 });
    expect(appended.map((e) => e.name)).toEqual(Array.from({ length: 10 }, (_, i) => `s${i + 15}`));
    expect(dropped).toEqual([15]);
    await sink.close(100);
  });

  it('puts a batch back when an append fails, in order', async () => {
    let fail = true;
    const appended: string[] = [];
    const sink = new EventSink({ flushDelayMs: 1, retryDelayMs: 10 });
    sink.attach({
      append: (e) => {
        if (fail) return Promise.reject(new Error('down'));
        appended.push(...e.map((x) => x.name));
        return Promise.resolve();
      },
    });
    for (const name of ['a', 'b', 'c'])
      sink.write(JSON.stringify({ level: 30, kind: 'Volume', name, verb: 'created', msg: 'created' }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    fail = false;
    await eventually(() => expect(appended).toEqual(['a', 'b', 'c']), { timeoutMs: 5_000 });
    await sink.close(100);
  });

  it('a controller logging against an unreachable Redis goes on at full speed', async () => {
    // A real reconnecting client aimed at a port nobody listens on: ready stays false.
    const deadRedis = await createRedis({ url: 'redis://127.0.0.1:1', mode: 'controller' });
    const deadStream = new RedisEventStream({ redis: deadRedis, keys: new KeySpace(uniquePrefix('dead')) });
    const lines: string[] = [];
    const { log, events } = createControllerLogging(
      { SWARMKEEPER_LOG_LEVEL: 'info' } as Parameters<typeof createControllerLogging>[0],
      { write: (line: string) => void lines.push(line) },
    );
    events.attach(deadStream);
    const started = performance.now();
    for (let i = 0; i < 20_000; i++)
      log.info({ kind: 'Service', name: `s${i}`, verb: 'updated', durationMs: 1 }, 'updated');
    const elapsed = performance.now() - started;
    expect(lines).toHaveLength(20_000);
    expect(events.pending).toBeLessThanOrEqual(5_000);
    expect(events.dropped).toBe(15_000);
    expect(elapsed).toBeLessThan(5_000);
    await events.close(100);
    await deadStream.close();
  });
});

describe('events of a real controller', () => {
  let lab: ControllerLab;
  let app: ControllerApp;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    lab = new ControllerLab('events-stream');
    await lab.open();
    const config = lab.config(1);
    const { log, events } = createControllerLogging(config, {
      write: (chunk: string) => {
        for (const line of chunk.split('\n'))
          if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    });
    app = await assembleController(config, { log, mode: 'controller', leaderElection: false, events });
    await app.start({ serveHttp: false });
  });
  afterAll(async () => {
    await app.close();
    await lab.close();
  });

  it('records the create, a drift and its repair, readable with `swarmkeeper events`', async () => {
    const name = lab.name('web');
    await lab.apply(
      lab.resource('Service', name, {
        image: 'local/busybox:1',
        command: ['sleep', '3600'],
        replicas: 1,
        stopGracePeriod: '1s',
      }),
    );
    const stream = new RedisEventStream({
      redis: await createRedis({ url: REDIS_URL, mode: 'cli' }),
      keys: new KeySpace(lab.prefix),
    });
    try {
      await eventually(async () => {
        const events = await stream.range({ count: 10, kind: 'Service', name });
        expect(events.map((e) => e.msg)).toEqual(expect.arrayContaining(['drift detected', 'created']));
      });
      await docker('service', 'scale', '--detach', `${name}=3`);
      await eventually(
        async () => {
          const events = await stream.range({ count: 10, kind: 'Service', name });
          const drift = events.find((e) => e.drift?.some((d) => d.path === 'spec.replicas'));
          expect(drift).toMatchObject({
            level: 'info',
            action: ['update'],
            drift: [{ path: 'spec.replicas', desired: 1, actual: 3 }],
          });
          expect(events.at(-1)).toMatchObject({ msg: 'updated', verb: 'updated' });
          expect(typeof events.at(-1)?.durationMs).toBe('number');
        },
        { timeoutMs: 45_000 },
      );
      // Every entry has only the agreed fields.
      for (const [, fields] of await lab.redis.xrange(`${lab.prefix}:events`, '-', '+')) {
        const names = fields.filter((_, i) => i % 2 === 0);
        expect(names.every((n) => (EVENT_FIELDS as readonly string[]).includes(n))).toBe(true);
      }

      const env = { REDIS_URL, SWARMKEEPER_PREFIX: lab.prefix };
      const text = await runCli(['events', '--kind', 'svc', '--name', name], env);
      expect(text.code).toBe(0);
      const out = text.stdout.trim().split('\n');
      expect(out).toContainEqual(
        expect.stringMatching(
          new RegExp(`^\\d\\d:\\d\\d:\\d\\d Service/${name} drift spec\\.replicas 3→1 → update$`),
        ),
      );
      expect(out).toContainEqual(
        expect.stringMatching(new RegExp(`^\\d\\d:\\d\\d:\\d\\d Service/${name} updated \\d+ms$`)),
      );
      expect(out).toContainEqual(
        expect.stringMatching(new RegExp(`^\\d\\d:\\d\\d:\\d\\d Service/${name} created \\d+ms$`)),
      );

      const json = await runCli(['events', '--name', name, '-o', 'json', '--limit', '2'], env);
      const parsed = json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as StoredEvent);
      expect(parsed).toHaveLength(2);
      expect(parsed.at(-1)).toMatchObject({ kind: 'Service', name, msg: 'updated' });
      expect(parsed.every((e) => /^\d+-\d+$/.test(e.id))).toBe(true);

      const none = await runCli(['events', '--name', 'nobody-has-this-name'], env);
      expect(none.code).toBe(0);
      expect(none.stderr).toContain('no events');
      expect((await runCli(['events', '--kind', 'gadget'], env)).code).toBe(2);
    } finally {
      await stream.close();
    }
    // The stdout destination got every line too.
    expect(lines.some((l) => l.msg === 'drift detected' && l.name === name)).toBe(true);
  });
});

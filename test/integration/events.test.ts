/**
 * dockerEvents against the real lab engine. The reconnect test drops the real HTTP connection under
 * the stream (the client side of what an engine restart does) through a DockerEventSource that wraps
 * the real client; nothing Docker sends is faked.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable, Transform } from 'node:stream';
import type { Subscription } from 'rxjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DockerCallCounter } from '../../src/observed/call-counter.js';
import { createDocker } from '../../src/observed/docker-client.js';
import {
  dockerEvents,
  type DockerEvent,
  type DockerEventSource,
  type DockerEventsOptions,
  type EventStreamNoticeKind,
} from '../../src/observed/events.js';
import { TEST_RUN_LABEL, testRunId } from '../support/lab.js';

const docker = createDocker();
const prefix = `skev-${randomBytes(3).toString('hex')}`;
const labels = (): Record<string, string> => ({ [TEST_RUN_LABEL]: testRunId() });
const mine = (name: string | undefined): boolean => name?.replace(/^\//, '').startsWith(prefix) === true;

interface Seen {
  readonly event: DockerEvent;
  /** performance.now() when the event reached the subscriber. */
  readonly at: number;
}

/** Subscribes and keeps every item, so a test can wait for one that may already have arrived. */
class Recorder {
  readonly seen: Seen[] = [];
  readonly notices: EventStreamNoticeKind[] = [];
  readonly subscription: Subscription;
  #waiters: (() => void)[] = [];

  constructor(source: DockerEventSource, options: DockerEventsOptions = {}) {
    this.subscription = dockerEvents(source, {
      ...options,
      onNotice: (kind) => {
        this.notices.push(kind);
        this.#wake();
      },
    }).subscribe({
      next: (event) => {
        this.seen.push({ event, at: performance.now() });
        this.#wake();
      },
      error: () => this.#wake(),
    });
  }

  /** The first recorded item, from index `from` on, that matches; waits for it up to `timeoutMs`. */
  async next(match: (e: DockerEvent) => boolean, from = 0, timeoutMs = 15_000): Promise<Seen> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.seen.slice(from).find((s) => match(s.event));
      if (found) return found;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error('expected event did not arrive');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async notice(kind: EventStreamNoticeKind, timeoutMs = 15_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.notices.includes(kind)) {
      if (performance.now() > deadline) throw new Error(`no ${kind} notice`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  count(match: (e: DockerEvent) => boolean): number {
    return this.seen.filter((s) => match(s.event)).length;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

const is =
  (type: DockerEvent['type'], name?: string, action?: string) =>
  (e: DockerEvent): boolean =>
    e.type === type &&
    (name === undefined || (e.type !== 'relist' && e.name === name)) &&
    (action === undefined || (e.type !== 'relist' && e.action === action));

const recorders: Recorder[] = [];
function record(source: DockerEventSource, options?: DockerEventsOptions): Recorder {
  const recorder = new Recorder(source, options);
  recorders.push(recorder);
  return recorder;
}

afterEach(() => {
  for (const r of recorders.splice(0)) r.subscription.unsubscribe();
});

afterAll(async () => {
  const filters = { label: [`${TEST_RUN_LABEL}=${testRunId()}`] };
  for (const s of await docker.listServices({ filters })) {
    if (mine(s.Spec?.Name)) await docker.getService(s.ID).remove();
  }
  for (const c of await docker.listContainers({ all: true, filters })) {
    if (c.Names.some(mine)) await docker.getContainer(c.Id).remove({ force: true });
  }
  for (const n of await docker.listNetworks({ filters })) {
    if (mine(n.Name)) await docker.getNetwork(n.Id).remove();
  }
  for (const c of await docker.listConfigs({ filters })) {
    if (mine(c.Spec?.Name)) await docker.getConfig(c.ID).remove();
  }
});

const createConfig = (name: string): Promise<unknown> =>
  docker.createConfig({ Name: name, Labels: labels(), Data: Buffer.from(name).toString('base64') });

describe('dockerEvents', () => {
  it('starts with relist, then reports service create and remove by name, promptly', async ({ annotate }) => {
    const counter = new DockerCallCounter();
    const events = record(docker, { counter });
    expect((await events.next(() => true)).event).toEqual({ type: 'relist', reason: 'subscribed' });
    expect(events.seen[0]?.event.type).toBe('relist');

    const name = `${prefix}-svc`;
    await docker.createService({
      Name: name,
      Labels: labels(),
      TaskTemplate: {
        ContainerSpec: { Image: 'local/busybox:1', Args: ['sleep', '3600'], StopGracePeriod: 1e9 },
      },
      Mode: { Replicated: { Replicas: 0 } },
    });
    const returned = performance.now();
    const created = await events.next(is('service', name, 'create'));
    // Negative when the engine publishes the event before its reply to the create call reaches us.
    const deltaMs = created.at - returned;
    const delayMs = Math.max(0, deltaMs);
    await annotate(`service create event arrived ${deltaMs.toFixed(2)} ms after the create call returned`);
    expect(delayMs).toBeLessThan(500);
    expect(created.event).toMatchObject({ type: 'service', action: 'create', name });
    if (created.event.type !== 'relist') {
      expect(created.event.id).toMatch(/^[a-z0-9]{25}$/);
      expect(Math.abs(created.event.time - Date.now())).toBeLessThan(60_000);
    }

    await docker.getService(name).remove();
    const removed = await events.next(is('service', name, 'remove'));
    expect(removed.event).toMatchObject({ type: 'service', action: 'remove', name });
    expect(counter.byMethod()).toEqual({ getEvents: 1 });
  });

  it('reports a network create by name', async () => {
    const events = record(docker);
    await events.next(is('relist'));
    const name = `${prefix}-net`;
    await docker.createNetwork({ Name: name, Driver: 'overlay', Attachable: true, Labels: labels() });
    expect((await events.next(is('network', name, 'create'))).event).toMatchObject({ type: 'network', name });
  });

  it('reassembles events split at any byte, and carries container labels', async () => {
    // Re-chunk the engine's real bytes into 3-byte pieces, cutting through JSON and multi-byte characters.
    const source: DockerEventSource = {
      async getEvents(options) {
        const stream = await docker.getEvents(options);
        const rechunk = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            for (let i = 0; i < chunk.length; i += 3) this.push(chunk.subarray(i, i + 3));
            done();
          },
        });
        stream.pipe(rechunk);
        return rechunk;
      },
    };
    const events = record(source);
    await events.next(is('relist'));
    const name = `${prefix}-ctr`;
    await docker.createContainer({
      name,
      Image: 'local/busybox:1',
      Cmd: ['true'],
      Labels: { ...labels(), 'io.swarmkeeper.note': 'grüße ✓ 猫' },
    });
    const created = await events.next(is('container', name, 'create'));
    expect(created.event).toMatchObject({
      type: 'container',
      name,
      labels: { 'io.swarmkeeper.note': 'grüße ✓ 猫', [TEST_RUN_LABEL]: testRunId() },
      attributes: { image: 'local/busybox:1' },
    });
    expect(events.notices).not.toContain('unparseable-event');
  });

  it('reconnects after the connection drops: relists, resumes with since, and keeps delivering', async () => {
    const streams: NodeJS.ReadableStream[] = [];
    const sinces: (number | undefined)[] = [];
    let releaseReconnect: () => void = () => undefined;
    const reconnectHeld = new Promise<void>((resolve) => (releaseReconnect = resolve));
    let holding = false;
    const source: DockerEventSource = {
      async getEvents(options) {
        sinces.push(options?.since);
        // Holding the reconnect open makes a real gap, so what happens in it can only arrive via `since`.
        if (holding) await reconnectHeld;
        const stream = await docker.getEvents(options);
        streams.push(stream);
        return stream;
      },
    };
    const events = record(source);
    await events.next(is('relist'));

    const before = `${prefix}-before`;
    await createConfig(before);
    await events.next(is('config', before, 'create'));

    holding = true;
    const first = streams[0] as IncomingMessage;
    first.socket.destroy();
    await events.notice('stream-ended');
    const mark = events.seen.length;

    const during = `${prefix}-during`;
    await createConfig(during);
    releaseReconnect();

    expect((await events.next(is('relist'), mark)).event).toEqual({ type: 'relist', reason: 'reconnected' });
    await events.next(is('config', during, 'create'), mark);
    expect(sinces).toHaveLength(2);
    expect(sinces[0]).toBeUndefined();
    const beforeEvent = events.seen.find((s) => is('config', before, 'create')(s.event))?.event;
    expect(typeof sinces[1]).toBe('number');
    if (beforeEvent?.type === 'config')
      expect((sinces[1] ?? Infinity) * 1000).toBeLessThanOrEqual(beforeEvent.time);
    // The overlap replayed on resume must not deliver the event before the gap a second time.
    expect(events.count(is('config', before, 'create'))).toBe(1);

    const after = `${prefix}-after`;
    await createConfig(after);
    await events.next(is('config', after, 'create'), mark);
    expect(events.count(is('relist'))).toBe(2);

    events.subscription.unsubscribe();
    const last = streams.at(-1);
    expect(last instanceof Readable && last.destroyed).toBe(true);
  });

  it('backs off and reports failed connects while the engine is unreachable', async () => {
    const events = record(createDocker({ socketPath: `/tmp/${prefix}-no-engine.sock` }), {
      backoff: { minMs: 50, maxMs: 200 },
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    const failures = events.notices.filter((n) => n === 'connect-failed').length;
    // 0 + 50 + 100 + 200 + 200 ms of waits fit in 600 ms: a handful of attempts, not a tight loop.
    expect(failures).toBeGreaterThanOrEqual(3);
    expect(failures).toBeLessThanOrEqual(7);
    expect(events.seen).toEqual([]);
    events.subscription.unsubscribe();
    const settled = events.notices.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(events.notices.length).toBe(settled);
  });
});

/**
 * The controller started while its Redis is down (a private redis-server, stopped): the real CLI
 * process must keep running, say so once and on /readyz, and once Redis is up reconcile and keep
 * every source alive (Docker events and keyspace notifications, with a 30 s resync so neither can
 * be mistaken for it). Nothing is mocked.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDesiredStore } from '../../src/desired/open.js';
import { MAX_RECONNECT_DELAY_MS } from '../../src/desired/redis-connection.js';
import { ControllerLab } from '../support/controller.js';
import { ControllerProcess, ensureBuilt } from '../support/controller-process.js';
import { testDocker } from '../support/docker-cleanup.js';
import { eventually } from '../support/eventually.js';
import { PrivateRedis } from '../support/redis-server.js';

const run = promisify(execFile);
const SLEEPER = { image: 'local/busybox:1', command: ['sleep', '3600'], stopGracePeriod: '1s' };
const OUTAGE = 'desired store unavailable; repairing from cached state';

let lab: ControllerLab;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);
beforeEach(async () => {
  lab = new ControllerLab('redis-startup');
  await lab.open();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await lab.close();
});

async function replicasOf(name: string): Promise<number | undefined> {
  const services = await testDocker.listServices({ filters: JSON.stringify({ name: [name] }) });
  return services.find((s) => s.Spec?.Name === name)?.Spec?.Mode?.Replicated?.Replicas;
}

describe('Redis down when the controller starts', () => {
  it('keeps running, logs the outage once, reports it on /readyz, and reconciles with every source alive once Redis is up', async () => {
    const redis = await PrivateRedis.start();
    cleanups.push(() => redis.destroy());
    const web = lab.name('web');
    const seed = await openDesiredStore(
      loadConfig({ REDIS_URL: redis.url, SWARMKEEPER_PREFIX: lab.prefix }),
      'cli',
    );
    await seed.apply([lab.resource('Service', web, { ...SLEEPER, replicas: 1 })]);
    await seed.close();
    await redis.stop('kill');

    // The deployment's defaults (leader election on), except a resync too slow to matter here.
    const child = ControllerProcess.start({
      REDIS_URL: redis.url,
      SWARMKEEPER_PREFIX: lab.prefix,
      SWARMKEEPER_RESYNC_SECONDS: '30',
    });
    cleanups.push(async () => {
      await child.stop();
    });
    const listening = await child.waitForLog('http listening');
    const readyz = async (): Promise<{ status: number; checks: Record<string, boolean> }> => {
      const response = await fetch(`http://${String(listening.address)}/readyz`);
      const body = (await response.json()) as { checks: Record<string, boolean> };
      return { status: response.status, checks: body.checks };
    };
    await eventually(async () =>
      expect(await readyz()).toMatchObject({ status: 503, checks: { redis: false } }),
    );

    // Several reconnect attempts' worth of outage: still running, still 503, one line about it.
    const downSince = Date.now();
    while (Date.now() - downSince < 3 * MAX_RECONNECT_DELAY_MS) {
      expect(child.running, child.tail()).toBe(true);
      expect((await readyz()).status).toBe(503);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(child.logsWith(OUTAGE)).toHaveLength(1);
    expect(await replicasOf(web)).toBeUndefined();

    await redis.restart();
    const upAt = Date.now();
    await eventually(async () => expect(await replicasOf(web)).toBe(1), {
      timeoutMs: MAX_RECONNECT_DELAY_MS + 20_000,
    });
    console.info(
      `controller started with Redis down: reconciled ${Date.now() - upAt} ms after Redis came up`,
    );
    await eventually(async () =>
      expect(await readyz()).toMatchObject({ status: 200, checks: { redis: true, synced: true } }),
    );
    expect(child.logsWith(OUTAGE)).toHaveLength(1);

    // Docker events reach it: an out-of-band scale is undone long before the 30 s resync.
    await run('docker', ['service', 'scale', '--detach', `${web}=2`]);
    await eventually(async () => expect(await replicasOf(web)).toBe(1), { timeoutMs: 10_000 });

    // So do keyspace notifications: a raw HSET is acted on long before the resync too.
    const raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    cleanups.push(() => Promise.resolve(raw.disconnect()));
    await raw.hset(`${lab.prefix}:desired:Service:${web}`, 'replicas', '3');
    await eventually(async () => expect(await replicasOf(web)).toBe(3), { timeoutMs: 10_000 });

    expect(child.logsWith('source failed')).toEqual([]);
    expect(child.running, child.tail()).toBe(true);
    expect(await child.stop()).toEqual({ code: 0, signal: null });
  }, 120_000);

  it('waits out a Redis that answers but cannot serve (MASTERDOWN) instead of exiting, then starts', async () => {
    // A replica whose master is away refuses reads, as during a failover; INFO and CONFIG still work.
    const redis = await PrivateRedis.start({
      persist: false,
      extraArgs: ['--replicaof', '127.0.0.1', '1', '--replica-serve-stale-data', 'no'],
    });
    cleanups.push(() => redis.destroy());
    const web = lab.name('web');
    // One replica without election: nothing between the start and the first read of the store.
    const child = ControllerProcess.start({
      REDIS_URL: redis.url,
      SWARMKEEPER_PREFIX: lab.prefix,
      SWARMKEEPER_LEADER_ELECTION: 'false',
      SWARMKEEPER_RESYNC_SECONDS: '30',
    });
    cleanups.push(async () => {
      await child.stop();
    });
    const listening = await child.waitForLog('http listening');
    const outage = await child.waitForLog(OUTAGE);
    expect(String(outage.code)).toBe('SK_STORE_UNAVAILABLE');
    const since = Date.now();
    while (Date.now() - since < 2 * MAX_RECONNECT_DELAY_MS) {
      expect(child.running, child.tail()).toBe(true);
      const response = await fetch(`http://${String(listening.address)}/readyz`);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { checks: Record<string, boolean> }).checks).toMatchObject({
        redis: false,
        synced: false,
      });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(child.logsWith(OUTAGE)).toHaveLength(1);
    expect(child.logsWith('controller running')).toEqual([]);

    // Promoted, as a failover would: it starts, and acts on what is written next.
    const raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    cleanups.push(() => Promise.resolve(raw.disconnect()));
    await raw.call('REPLICAOF', 'NO', 'ONE');
    await child.waitForLog('controller running', {}, MAX_RECONNECT_DELAY_MS + 10_000);
    await child.waitForLog('desired store available again');
    const store = await openDesiredStore(
      loadConfig({ REDIS_URL: redis.url, SWARMKEEPER_PREFIX: lab.prefix }),
      'cli',
    );
    await store.apply([lab.resource('Service', web, { ...SLEEPER, replicas: 1 })]);
    await store.close();
    await eventually(async () => expect(await replicasOf(web)).toBe(1), { timeoutMs: 10_000 });
    const response = await fetch(`http://${String(listening.address)}/readyz`);
    expect(response.status).toBe(200);
    expect(child.logsWith(OUTAGE)).toHaveLength(1);
    expect(await child.stop()).toEqual({ code: 0, signal: null });
  }, 120_000);
});

/**
 * RedisDesiredStore against the lab's real Redis. Every test works under its own key prefix and
 * drops it afterwards; raw redis-cli style edits go through a plain ioredis client.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Subscription } from 'rxjs';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESERVED_FIELDS } from '../../src/desired/codec.js';
import { KeySpace } from '../../src/desired/keys.js';
import {
  MAX_RECONNECT_DELAY_MS,
  createRedis,
  reconnectDelayMs,
  redactRedisUrl,
  redisOptions,
  type RedisMode,
} from '../../src/desired/redis-connection.js';
import { RedisDesiredStore, missingKeyspaceFlags, type StoreNotice } from '../../src/desired/redis-store.js';
import type { DesiredChange, StoredRecord } from '../../src/desired/store.js';
import { ConfigError, InvalidResourceError, StoreUnavailableError } from '../../src/errors.js';
import { KINDS } from '../../src/resources/kinds/index.js';
import { API_VERSION } from '../../src/resources/metadata.js';
import { validateResource, type Resource } from '../../src/resources/resource.js';
import { REDIS_URL, dropPrefix, rawRedis, uniquePrefix } from '../support/lab.js';

function resource(
  kind: string,
  name: string,
  spec: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Resource {
  const result = validateResource({ apiVersion: API_VERSION, kind, metadata: { name, ...extra }, spec });
  if (!result.ok) throw new Error(`bad fixture ${kind}/${name}: ${JSON.stringify(result.issues)}`);
  return result.resource;
}

/** One resource of every kind, listed in kind dependency order. */
const everyKind: Resource[] = [
  resource('Network', 'jupyterhub', { driver: 'overlay', attachable: true }, { labels: { tier: 'net' } }),
  resource('Volume', 'nfsvolume', {
    driver: 'local',
    driverOpts: { type: 'nfs4', o: 'addr=10.0.0.1', device: ':/var/nfs' },
  }),
  resource('Config', 'nginx-conf', { data: 'server { listen 80; }\n' }),
  resource('Secret', 'oauth-client-secret', { data: 's3cr3t' }),
  resource('HomeFolders', 'nfs', {
    root: '/var/nfs',
    naming: 'md5',
    quota: { driver: 'xfs', default: '10Gi' },
  }),
  resource(
    'Service',
    'nginx',
    {
      image: 'nginx:1.27',
      networks: ['jupyterhub'],
      ports: [{ target: 80, published: 80, mode: 'ingress' }],
      configs: [{ source: 'nginx-conf', target: '/etc/nginx/conf.d/default.conf', mode: '0444' }],
      replicas: 1,
      resources: { limits: { cpus: 0.5, memory: '128M' } },
    },
    { annotations: { 'swarmkeeper/ignore-fields': 'replicas' } },
  ),
  resource('Container', 'letsencrypt', {
    image: 'linuxserver/swag',
    capAdd: ['NET_ADMIN'],
    networks: ['jupyterhub'],
  }),
  resource('User', 'alice', { email: 'alice@example.org', quota: '2Gi' }),
];

const raw = rawRedis();
let prefix: string;
let keys: KeySpace;
let opened: RedisDesiredStore[] = [];

async function openStore(
  mode: RedisMode = 'cli',
  extra: { onNotice?: StoreNotice; url?: string; passwordFile?: string } = {},
): Promise<RedisDesiredStore> {
  const redis = await createRedis({
    url: extra.url ?? REDIS_URL,
    mode,
    ...(extra.passwordFile !== undefined && { passwordFile: extra.passwordFile }),
  });
  const store = new RedisDesiredStore({
    redis,
    keys,
    ...(extra.onNotice !== undefined && { onNotice: extra.onNotice }),
  });
  opened.push(store);
  return store;
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function subscriberCount(channel: string): Promise<number> {
  const reply = await raw.call('PUBSUB', 'NUMSUB', channel);
  return Array.isArray(reply) ? Number(reply[1]) : 0;
}

function okResources(records: readonly StoredRecord[]): Resource[] {
  return records.flatMap((r) => (r.ok ? [r.resource] : []));
}

function failed(records: readonly StoredRecord[]): Extract<StoredRecord, { ok: false }>[] {
  return records.flatMap((r) => (r.ok ? [] : [r]));
}

beforeEach(() => {
  prefix = uniquePrefix('store');
  keys = new KeySpace(prefix);
});

afterEach(async () => {
  await Promise.all(opened.map((store) => store.close()));
  opened = [];
  await dropPrefix(raw, prefix);
});

afterAll(async () => {
  await raw.quit();
});

describe('apply, list and get', () => {
  it('round-trips one resource of every kind, listed in kind dependency order', async () => {
    const store = await openStore();
    const shuffled = [...everyKind].reverse();
    const results = await store.apply(shuffled);
    expect(results.map((r) => [r.kind, r.name, r.action])).toEqual(
      shuffled.map((r) => [r.kind, r.metadata.name, 'created']),
    );

    const records = await store.list();
    expect(failed(records)).toEqual([]);
    expect(okResources(records)).toEqual(everyKind);
    expect(records.map((r) => r.key)).toEqual(everyKind.map((r) => keys.desired(r.kind, r.metadata.name)));
    expect(okResources(records).map((r) => r.kind)).toEqual(KINDS);

    for (const original of everyKind) {
      expect(await store.get(original.kind, original.metadata.name)).toEqual({
        ok: true,
        key: keys.desired(original.kind, original.metadata.name),
        resource: original,
      });
    }
    expect(await store.get('Service', 'absent')).toBeUndefined();
  });

  it('stores plain scalars and JSON that redis-cli users can read', async () => {
    const store = await openStore();
    await store.apply(everyKind);
    expect(await raw.hgetall(keys.desired('Service', 'nginx'))).toEqual({
      [RESERVED_FIELDS.apiVersion]: API_VERSION,
      [RESERVED_FIELDS.annotations]: '{"swarmkeeper/ignore-fields":"replicas"}',
      image: 'nginx:1.27',
      networks: '["jupyterhub"]',
      ports: '[{"target":80,"published":80,"mode":"ingress"}]',
      configs: '[{"source":"nginx-conf","target":"/etc/nginx/conf.d/default.conf","mode":"0444"}]',
      replicas: '1',
      resources: '{"limits":{"cpus":0.5,"memory":"128M"}}',
    });
    expect(await raw.hget(keys.desired('Network', 'jupyterhub'), 'attachable')).toBe('true');
  });

  it('returns an empty list for an empty prefix', async () => {
    const store = await openStore();
    expect(await store.list()).toEqual([]);
  });
});

describe('raw redis-cli edits', () => {
  it('show up through get and list: HSET a field, HSET a new User, DEL a record', async () => {
    const store = await openStore();
    await store.apply(everyKind);

    await raw.hset(keys.desired('Service', 'nginx'), 'replicas', '2');
    const nginx = await store.get('Service', 'nginx');
    expect(nginx?.ok && nginx.resource.kind === 'Service' && nginx.resource.spec.replicas).toBe(2);

    await raw.hset(keys.desired('User', 'bob'), 'email', 'bob@example.org', 'quota', '2Gi');
    expect(await store.get('User', 'bob')).toEqual({
      ok: true,
      key: keys.desired('User', 'bob'),
      resource: resource('User', 'bob', { email: 'bob@example.org', quota: '2Gi' }),
    });

    await raw.hset(keys.desired('Network', 'jupyterhub'), 'internal', 'true');
    await raw.hdel(keys.desired('Network', 'jupyterhub'), 'driver');
    const network = await store.get('Network', 'jupyterhub');
    expect(network?.ok && network.resource.spec).toEqual({ attachable: true, internal: true });

    await raw.del(keys.desired('Container', 'letsencrypt'));
    expect(await store.get('Container', 'letsencrypt')).toBeUndefined();

    const listed = await store.list();
    expect(failed(listed)).toEqual([]);
    expect(listed.map((r) => (r.ok ? `${r.resource.kind}/${r.resource.metadata.name}` : r.key))).toEqual([
      'Network/jupyterhub',
      'Volume/nfsvolume',
      'Config/nginx-conf',
      'Secret/oauth-client-secret',
      'HomeFolders/nfs',
      'Service/nginx',
      'User/alice',
      'User/bob',
    ]);
  });

  it('reports invalid records with their field paths while the others still load', async () => {
    const store = await openStore();
    await store.apply(everyKind);
    await raw.hset(keys.desired('Service', 'nginx'), 'replicas', 'two');
    await raw.hset(
      keys.desired('Service', 'broken'),
      'image',
      'x',
      'ports',
      '[{"target": 80',
      'replicas',
      'many',
    );
    await raw.set(keys.desired('Volume', 'astring'), 'not a hash');
    await raw.hset(`${prefix}:desired:Gadget:g1`, 'size', '1');

    const records = await store.list();
    expect(okResources(records).map((r) => `${r.kind}/${r.metadata.name}`)).toEqual([
      'Network/jupyterhub',
      'Volume/nfsvolume',
      'Config/nginx-conf',
      'Secret/oauth-client-secret',
      'HomeFolders/nfs',
      'Container/letsencrypt',
      'User/alice',
    ]);
    const problems = Object.fromEntries(
      failed(records).map((r) => [`${r.kind}/${r.name}`, r.issues.map((i) => `${i.path}: ${i.message}`)]),
    );
    expect(Object.keys(problems)).toEqual(['Volume/astring', 'Service/broken', 'Service/nginx', 'Gadget/g1']);
    expect(problems['Service/nginx']).toEqual([expect.stringMatching(/^spec\.replicas: .*number/)]);
    expect(problems['Service/broken']).toEqual([
      expect.stringMatching(/^spec\.ports: invalid JSON: /),
      expect.stringMatching(/^spec\.replicas: /),
    ]);
    expect(problems['Volume/astring']).toEqual(['type: must be a HASH, not string']);
    expect(problems['Gadget/g1']).toEqual([expect.stringMatching(/^kind: unknown kind "Gadget"/)]);

    const single = await store.get('Service', 'nginx');
    expect(single).toMatchObject({ ok: false, kind: 'Service', name: 'nginx' });
    expect(single?.ok === false && single.issues.map((i) => i.path)).toEqual(['spec.replicas']);
  });
});

describe('apply results', () => {
  const nginx = (spec: Record<string, unknown>, labels?: Record<string, string>): Resource =>
    resource('Service', 'nginx', { image: 'nginx:1.27', ...spec }, labels ? { labels } : {});

  it('reports created, configured and unchanged with the changed fields, replacing records whole', async () => {
    const store = await openStore();
    const first = await store.apply([nginx({ replicas: 1, hostname: 'web' }), everyKind[0] as Resource]);
    expect(first).toEqual([
      {
        kind: 'Service',
        name: 'nginx',
        action: 'created',
        changedFields: ['_apiVersion', 'hostname', 'image', 'replicas'],
      },
      {
        kind: 'Network',
        name: 'jupyterhub',
        action: 'created',
        changedFields: ['_apiVersion', '_labels', 'attachable', 'driver'],
      },
    ]);

    const again = await store.apply([nginx({ replicas: 1, hostname: 'web' }), everyKind[0] as Resource]);
    expect(again.map((r) => [r.action, r.changedFields])).toEqual([
      ['unchanged', []],
      ['unchanged', []],
    ]);

    const changed = await store.apply([nginx({ replicas: 3 }, { tier: 'web' })]);
    expect(changed).toEqual([
      {
        kind: 'Service',
        name: 'nginx',
        action: 'configured',
        changedFields: ['_labels', 'hostname', 'replicas'],
      },
    ]);
    const stored = await raw.hgetall(keys.desired('Service', 'nginx'));
    expect(stored).not.toHaveProperty('hostname');
    expect(stored.replicas).toBe('3');
  });

  it('counts a raw edit that only respells a value as unchanged', async () => {
    const store = await openStore();
    await store.apply([nginx({ ports: [{ target: 80 }] })]);
    await raw.hset(keys.desired('Service', 'nginx'), 'ports', '[ { "target" : 80 } ]');
    const results = await store.apply([nginx({ ports: [{ target: 80 }] })]);
    expect(results.map((r) => r.action)).toEqual(['unchanged']);
  });

  it('writes nothing and publishes nothing on a dry run', async () => {
    const store = await openStore();
    await store.apply([nginx({ replicas: 1 })]);
    const before = await raw.hgetall(keys.desired('Service', 'nginx'));
    const generation = await raw.get(keys.generation);

    const listener = raw.duplicate();
    const published: string[] = [];
    listener.on('message', (_channel: string, message: string) => published.push(message));
    await listener.subscribe(keys.changesChannel);
    try {
      const results = await store.apply([nginx({ replicas: 5 }), everyKind[7] as Resource], { dryRun: true });
      expect(results).toEqual([
        { kind: 'Service', name: 'nginx', action: 'configured', changedFields: ['replicas'] },
        { kind: 'User', name: 'alice', action: 'created', changedFields: ['_apiVersion', 'email', 'quota'] },
      ]);
      await raw.publish(keys.changesChannel, 'marker/end');
      await waitFor('the marker message', () => (published.includes('marker/end') ? true : undefined));
      expect(published).toEqual(['marker/end']);
    } finally {
      listener.disconnect();
    }
    expect(await raw.hgetall(keys.desired('Service', 'nginx'))).toEqual(before);
    expect(await raw.exists(keys.desired('User', 'alice'))).toBe(0);
    expect(await raw.get(keys.generation)).toBe(generation);
  });

  it('refuses a set that would not read back, writing nothing', async () => {
    const store = await openStore();
    const withFile = resource('Config', 'from-file', { file: 'nginx.conf' });
    await expect(store.apply([everyKind[0] as Resource, withFile])).rejects.toBeInstanceOf(
      InvalidResourceError,
    );
    await expect(store.apply([everyKind[0] as Resource, everyKind[0] as Resource])).rejects.toThrow(
      /more than once/,
    );
    expect(await store.list()).toEqual([]);
  });

  it('deletes a record, publishing the change, and says whether it existed', async () => {
    const store = await openStore();
    await store.apply(everyKind);
    expect(await store.delete('Service', 'nginx')).toBe(true);
    expect(await store.delete('Service', 'nginx')).toBe(false);
    expect(await store.get('Service', 'nginx')).toBeUndefined();
    expect((await store.list()).length).toBe(everyKind.length - 1);
  });
});

describe('concurrent applies', () => {
  const SHARED = 10;
  const ROUNDS = 20;
  const markedSet = (marker: string, extra: string): Resource[] => [
    ...Array.from({ length: SHARED }, (_, i) =>
      resource('Service', `svc-${i}`, { image: `marker:${marker}`, replicas: i }),
    ),
    resource('Service', extra, { image: `marker:${marker}` }),
  ];
  const sharedImages = (records: readonly StoredRecord[]): string[] =>
    okResources(records).flatMap((r) =>
      r.kind === 'Service' && r.metadata.name.startsWith('svc-') ? [r.spec.image] : [],
    );

  it('never interleave, and a reader polling list() never sees a mix', async () => {
    const a = await openStore();
    const b = await openStore();
    const reader = await openStore();
    let racing = true;
    let reads = 0;
    const mixes: string[][] = [];
    const polling = (async () => {
      while (racing) {
        const images = sharedImages(await reader.list());
        reads += 1;
        if (new Set(images).size > 1 || (images.length !== 0 && images.length !== SHARED)) mixes.push(images);
      }
    })();

    try {
      for (let round = 0; round < ROUNDS; round++) {
        const [resultsA, resultsB] = await Promise.all([
          a.apply(markedSet(`a-${round}`, 'only-a')),
          b.apply(markedSet(`b-${round}`, 'only-b')),
        ]);
        for (const results of [resultsA, resultsB]) {
          // Each apply compared against one whole state, so every shared record got the same verdict.
          const shared = results.filter((r) => r.name.startsWith('svc-'));
          expect(shared).toHaveLength(SHARED);
          expect(new Set(shared.map((r) => r.action)).size).toBe(1);
          expect(shared.every((r) => r.action !== 'unchanged')).toBe(true);
        }
        const images = sharedImages(await reader.list());
        expect(images).toHaveLength(SHARED);
        expect(new Set(images).size, `round ${round}: ${images.join(', ')}`).toBe(1);
        expect([`marker:a-${round}`, `marker:b-${round}`]).toContain(images[0]);
        const rawImages = await Promise.all(
          Array.from({ length: SHARED }, (_, i) => raw.hget(keys.desired('Service', `svc-${i}`), 'image')),
        );
        expect(new Set(rawImages)).toEqual(new Set([images[0]]));
      }
    } finally {
      racing = false;
      await polling;
    }
    expect(reads).toBeGreaterThan(ROUNDS);
    expect(mixes).toEqual([]);
  });

  it('serialises concurrent applies on one store, which share one connection', async () => {
    const store = await openStore();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, n) => store.apply(markedSet(`n-${n}`, `only-${n}`))),
    );
    for (const set of results) expect(set).toHaveLength(SHARED + 1);
    const images = sharedImages(await store.list());
    expect(new Set(images)).toEqual(new Set(['marker:n-5']));
  });
});

describe('watch', () => {
  const watching: Subscription[] = [];
  afterEach(() => {
    for (const subscription of watching.splice(0)) subscription.unsubscribe();
  });

  function collect(
    store: RedisDesiredStore,
    rescanIntervalMs: number,
  ): { seen: DesiredChange[]; errors: unknown[] } {
    const seen: DesiredChange[] = [];
    const errors: unknown[] = [];
    watching.push(
      store
        .watch({ rescanIntervalMs })
        .subscribe({ next: (c) => seen.push(c), error: (e: unknown) => errors.push(e) }),
    );
    return { seen, errors };
  }

  const find = (seen: readonly DesiredChange[], want: DesiredChange) => (): true | undefined =>
    seen.some((c) => c.kind === want.kind && c.name === want.name && c.via === want.via) ? true : undefined;

  it('emits raw HSET and DEL through keyspace notifications, keeping flags already set', async () => {
    const original = await raw.config('GET', 'notify-keyspace-events');
    const originalFlags = Array.isArray(original) && typeof original[1] === 'string' ? original[1] : '';
    await raw.config('SET', 'notify-keyspace-events', 'Kl');
    try {
      const store = await openStore('controller');
      const { seen, errors } = collect(store, 60_000);
      await waitFor('the watch to subscribe', async () =>
        (await subscriberCount(keys.changesChannel)) > 0 ? true : undefined,
      );
      expect(store.keyspaceNotifications).toBe('enabled');
      const flags = await raw.config('GET', 'notify-keyspace-events');
      const value = Array.isArray(flags) && typeof flags[1] === 'string' ? flags[1] : '';
      for (const flag of ['K', 'l', 'g', 'h', 'x', 'e']) expect(value).toContain(flag);

      await raw.hset(keys.desired('Service', 'edited'), 'image', 'x');
      await waitFor(
        'a keyspace change for HSET',
        find(seen, { kind: 'Service', name: 'edited', via: 'keyspace' }),
      );
      seen.length = 0;
      await raw.del(keys.desired('Service', 'edited'));
      await waitFor(
        'a keyspace change for DEL',
        find(seen, { kind: 'Service', name: 'edited', via: 'keyspace' }),
      );
      await raw.hset(keys.desired('User', 'carol'), 'quota', '1G');
      await waitFor(
        'a keyspace change for a new User',
        find(seen, { kind: 'User', name: 'carol', via: 'keyspace' }),
      );
      // Keys outside the prefix are not this store's business.
      await raw.hset(`${prefix}x:desired:Service:other`, 'image', 'x');
      await raw.del(`${prefix}x:desired:Service:other`);
      expect(seen.every((c) => c.name !== 'other')).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await raw.config('SET', 'notify-keyspace-events', originalFlags);
    }
  });

  it('says when its subscription is live, first and again after the connection was dropped', async () => {
    const redis = await createRedis({ url: REDIS_URL, mode: 'controller' });
    const connectionName = `sk-sub-${prefix.replace(/[^a-z0-9-]/gi, '')}`;
    const store = new RedisDesiredStore({
      redis,
      keys,
      subscriberFactory: () => redis.duplicate({ connectionName }),
    });
    opened.push(store);
    let subscribed = 0;
    const seen: DesiredChange[] = [];
    watching.push(
      store.watch({ rescanIntervalMs: 60_000, onSubscribed: () => (subscribed += 1) }).subscribe({
        next: (c) => seen.push(c),
      }),
    );
    await waitFor('the first subscription', () => (subscribed === 1 ? true : undefined));

    // Redis drops the subscriber (as it does one over its output buffer limit).
    const clients = String(await raw.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
    const id = clients
      .split('\n')
      .find((line) => line.includes(` name=${connectionName} `))
      ?.match(/^id=(\d+)/)?.[1];
    expect(id).toBeDefined();
    await raw.call('CLIENT', 'KILL', 'ID', String(id));
    await waitFor('the subscription to be live again', () => (subscribed === 2 ? true : undefined));

    // Live means live: an edit made now arrives as a notification.
    await raw.hset(keys.desired('Service', 'after-drop'), 'image', 'x');
    await waitFor(
      'a keyspace change after the drop',
      find(seen, { kind: 'Service', name: 'after-drop', via: 'keyspace' }),
    );
  });

  it('emits a CLI apply and delete through the changes channel', async () => {
    const controller = await openStore('controller');
    const cli = await openStore('cli');
    const { seen, errors } = collect(controller, 60_000);
    await waitFor('the watch to subscribe', async () =>
      (await subscriberCount(keys.changesChannel)) > 0 ? true : undefined,
    );
    await cli.apply(everyKind);
    for (const r of everyKind) {
      await waitFor(
        `a publish for ${r.kind}/${r.metadata.name}`,
        find(seen, { kind: r.kind, name: r.metadata.name, via: 'publish' }),
      );
    }
    seen.length = 0;
    await cli.delete('User', 'alice');
    await waitFor('a publish for the delete', find(seen, { kind: 'User', name: 'alice', via: 'publish' }));
    expect(errors).toEqual([]);
  });

  it('re-announces every desired key on each rescan, unknown kinds included', async () => {
    const store = await openStore('controller');
    await store.apply(everyKind);
    await raw.hset(`${prefix}:desired:Gadget:g1`, 'size', '1');
    const { seen } = collect(store, 100);
    const wanted = [
      ...everyKind.map((r) => ({ kind: r.kind, name: r.metadata.name })),
      { kind: 'Gadget', name: 'g1' },
    ];
    for (const want of wanted)
      await waitFor(`a rescan of ${want.kind}/${want.name}`, find(seen, { ...want, via: 'scan' }));
    const firstPass = seen.filter((c) => c.via === 'scan').length;
    await waitFor('a second rescan', () =>
      seen.filter((c) => c.via === 'scan').length >= firstPass + wanted.length ? true : undefined,
    );
  });

  it('closes its subscriber connection and timer on unsubscribe (from a fail-fast CLI client too)', async () => {
    const store = await openStore('cli');
    await store.apply([everyKind[0] as Resource]);
    const { seen } = collect(store, 50);
    await waitFor('the watch to subscribe', async () =>
      (await subscriberCount(keys.changesChannel)) > 0 ? true : undefined,
    );
    await waitFor('a rescan', () => (seen.length > 0 ? true : undefined));
    for (const subscription of watching.splice(0)) subscription.unsubscribe();
    await waitFor('the subscriber to leave', async () =>
      (await subscriberCount(keys.changesChannel)) === 0 ? true : undefined,
    );
    const count = seen.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.length).toBe(count);
  });

  it('works without CONFIG rights: one notice, and the changes channel still works', async () => {
    const user = `sktest-${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    const dir = await mkdtemp(path.join(tmpdir(), 'sk-store-'));
    await raw.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all', '-config');
    try {
      const passwordFile = path.join(dir, 'redis-password');
      await writeFile(passwordFile, `${password}\n`);
      const url = new URL(REDIS_URL);
      url.username = user;
      const notices: { message: string; fields: Readonly<Record<string, unknown>> }[] = [];
      const onNotice: StoreNotice = (message, fields) => notices.push({ message, fields });
      const restricted = await openStore('controller', { url: url.toString(), passwordFile, onNotice });
      const first = collect(restricted, 60_000);
      const second = collect(restricted, 60_000);
      await waitFor('both watches to subscribe', async () =>
        (await subscriberCount(keys.changesChannel)) >= 2 ? true : undefined,
      );
      expect(restricted.keyspaceNotifications).toBe('unavailable');
      expect(notices).toHaveLength(1);
      expect(notices[0]?.message).toMatch(/keyspace notifications/);
      expect(String(notices[0]?.fields.reason)).toMatch(/NOPERM|permission/i);
      expect(JSON.stringify(notices)).not.toContain(password);

      const cli = await openStore('cli');
      await cli.apply([everyKind[0] as Resource]);
      await waitFor('a publish', find(first.seen, { kind: 'Network', name: 'jupyterhub', via: 'publish' }));
      await waitFor('a publish', find(second.seen, { kind: 'Network', name: 'jupyterhub', via: 'publish' }));
      expect(await restricted.list()).toHaveLength(1);
    } finally {
      await raw.call('ACL', 'DELUSER', user);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('status', () => {
  it('writes only the provided fields and reads them back', async () => {
    const store = await openStore();
    expect(await store.readStatus('Service', 'nginx')).toBeUndefined();
    await store.writeStatus('Service', 'nginx', {
      sync: 'Pending',
      health: 'Progressing',
      message: 'creating',
    });
    await store.writeStatus('Service', 'nginx', {
      sync: 'OutOfSync',
      lastDriftAt: '2025-01-02T03:04:05.000Z',
      lastDrift: [{ path: 'spec.replicas', desired: 2, actual: 1 }],
    });
    expect(await store.readStatus('Service', 'nginx')).toEqual({
      sync: 'OutOfSync',
      health: 'Progressing',
      message: 'creating',
      lastDriftAt: '2025-01-02T03:04:05.000Z',
      lastDrift: [{ path: 'spec.replicas', desired: 2, actual: 1 }],
    });
    expect(await raw.hget(keys.status('Service', 'nginx'), 'lastDrift')).toBe(
      '[{"path":"spec.replicas","desired":2,"actual":1}]',
    );
    // Status lives beside the desired record, not in it.
    expect(await store.list()).toEqual([]);
  });
});

describe('connections', () => {
  it('fails fast in CLI mode when Redis is not there', async () => {
    const started = Date.now();
    const attempt = createRedis({ url: 'redis://127.0.0.1:1', mode: 'cli', connectTimeoutMs: 1_000 });
    await expect(attempt).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(attempt).rejects.toThrow(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('refuses an unreadable password file and a non-Redis URL as configuration errors', async () => {
    await expect(
      createRedis({ mode: 'cli', passwordFile: '/nonexistent/redis-password' }),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(createRedis({ mode: 'cli', url: 'http://127.0.0.1:6379' })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('wraps a wrong password as StoreUnavailableError without printing it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sk-store-'));
    try {
      const passwordFile = path.join(dir, 'pw');
      await writeFile(passwordFile, 'definitely-wrong\n');
      const url = new URL(REDIS_URL);
      url.username = `sktest-nobody-${randomBytes(3).toString('hex')}`;
      const attempt = createRedis({
        url: url.toString(),
        mode: 'cli',
        passwordFile,
        connectTimeoutMs: 1_000,
      });
      await expect(attempt).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(attempt).rejects.not.toThrow(/definitely-wrong/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('picks a fail-fast policy for the CLI and a patient one for the controller', () => {
    const cli = redisOptions({ mode: 'cli' }, 'redis://127.0.0.1:6379', undefined);
    expect(cli).toMatchObject({ lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    expect(cli.retryStrategy?.(1)).toBeNull();

    const controller = redisOptions({ mode: 'controller' }, 'redis://127.0.0.1:6379', 'pw');
    expect(controller).toMatchObject({
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      password: 'pw',
    });
    expect(controller.tls).toBeUndefined();
    const delays = [1, 2, 3, 5, 10, 100, 10_000].map((n) => reconnectDelayMs(n));
    expect(delays[0]).toBe(100);
    expect(delays.every((d, i) => i === 0 || d >= (delays[i - 1] ?? 0))).toBe(true);
    expect(Math.max(...delays)).toBe(MAX_RECONNECT_DELAY_MS);

    expect(redisOptions({ mode: 'cli' }, 'rediss://redis.example.org:6380', undefined).tls).toEqual({
      servername: 'redis.example.org',
    });
    expect(redactRedisUrl('redis://user:hunter2@host:6379/2')).toBe('redis://user:redacted@host:6379/2');
    expect(redisOptions({ mode: 'cli' }, 'redis://hub:from-url@host:6379', 'from-file')).toMatchObject({
      username: 'hub',
      password: 'from-file',
    });
    expect(redisOptions({ mode: 'cli' }, 'redis://:from%40url@host:6379', undefined).password).toBe(
      'from@url',
    );
  });

  it('adds only the keyspace flags that are missing', () => {
    expect(missingKeyspaceFlags('')).toEqual(['K', 'g', 'h', 'x', 'e']);
    expect(missingKeyspaceFlags('KEA')).toEqual([]);
    expect(missingKeyspaceFlags('Elh')).toEqual(['K', 'g', 'x', 'e']);
  });
});

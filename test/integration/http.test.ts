/**
 * The HTTP endpoint against a real Redis store: probes, metrics, the users API and its refusals.
 * Requests go through node:http with the raw path, because fetch would resolve `..` before sending.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDesiredStore } from '../../src/desired/open.js';
import { KeySpace } from '../../src/desired/keys.js';
import type { RedisDesiredStore } from '../../src/desired/redis-store.js';
import { ConfigError } from '../../src/errors.js';
import { Metrics } from '../../src/http/metrics.js';
import { createHttpServer, type HttpServer, type Readiness } from '../../src/http/server.js';
import type { UsersStore } from '../../src/http/users-api.js';
import { createLogger } from '../../src/log.js';
import { validateResource, type Resource } from '../../src/resources/resource.js';
import { dropPrefix, rawRedis, REDIS_URL, uniquePrefix } from '../support/lab.js';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

const TOKEN = randomBytes(32).toString('hex');
const SERIES = [
  'swarmkeeper_reconcile_total',
  'swarmkeeper_reconcile_duration_seconds',
  'swarmkeeper_drift_detected_total',
  'swarmkeeper_workqueue_depth',
  'swarmkeeper_workqueue_retries_total',
  'swarmkeeper_leader',
  'swarmkeeper_resources',
  'swarmkeeper_home_folder_used_bytes',
  'swarmkeeper_home_folder_quota_bytes',
];

const prefix = uniquePrefix('http');
const redis: Redis = rawRedis();
/** Every response body and every log line, checked for the token at the end. */
const replies: Reply[] = [];
const logLines: string[] = [];
let store: RedisDesiredStore;
let storeCalls: string[];
let tempDir: string;
let tokenFile: string;
let metrics: Metrics;
let readiness: Readiness;
const servers: HttpServer[] = [];
let port: number;

function logSink(): Writable {
  return new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
}

/** The real store, with every call it receives written down, to prove a refused request made none. */
function recordingStore(inner: RedisDesiredStore): UsersStore {
  return {
    get: (kind, name) => {
      storeCalls.push(`get ${kind}/${name}`);
      return inner.get(kind, name);
    },
    apply: (resources, options) => {
      storeCalls.push('apply');
      return inner.apply(resources, options);
    },
    readStatus: (kind, name) => {
      storeCalls.push(`readStatus ${kind}/${name}`);
      return inner.readStatus(kind, name);
    },
  };
}

async function startServer(options: { rate?: number; burst?: number } = {}): Promise<number> {
  const server = createHttpServer({
    log: createLogger('debug', logSink()),
    metrics,
    readiness: () => readiness,
    users: { store: recordingStore(store), tokenFile },
    rateLimit: { ratePerSecond: options.rate ?? 10_000, burst: options.burst ?? 10_000 },
  });
  servers.push(server);
  return (await server.listen('127.0.0.1:0')).port;
}

function send(
  method: string,
  path: string,
  options: { body?: string | Buffer; headers?: OutgoingHttpHeaders; port?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: options.port ?? port, method, path, headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const reply = {
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          };
          replies.push(reply);
          resolve(reply);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const auth = (token = TOKEN): OutgoingHttpHeaders => ({ authorization: `Bearer ${token}` });
const jsonHeaders = (token = TOKEN): OutgoingHttpHeaders => ({
  ...auth(token),
  'content-type': 'application/json',
});

function putUser(name: string, body: unknown, headers: OutgoingHttpHeaders = jsonHeaders()): Promise<Reply> {
  return send('PUT', `/api/v1/users/${name}`, { body: JSON.stringify(body), headers });
}

function json(reply: Reply): Record<string, unknown> {
  return JSON.parse(reply.text) as Record<string, unknown>;
}

function errorOf(reply: Reply): {
  code?: string;
  message: string;
  fields?: { path: string; message: string }[];
} {
  return json(reply).error as {
    code?: string;
    message: string;
    fields?: { path: string; message: string }[];
  };
}

/** Every key under the prefix with its serialised value: equal snapshots mean nothing was written. */
async function snapshot(): Promise<Map<string, string>> {
  const keys = (await redis.keys(`${prefix}:*`)).sort();
  const values = new Map<string, string>();
  for (const key of keys) values.set(key, (await redis.dumpBuffer(key))?.toString('hex') ?? '');
  return values;
}

function user(name: string, spec: unknown, metadata: Record<string, unknown> = {}): Resource {
  const result = validateResource({
    apiVersion: 'swarmkeeper/v1',
    kind: 'User',
    metadata: { name, ...metadata },
    spec,
  });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.resource;
}

beforeAll(async () => {
  store = await openDesiredStore(loadConfig({ REDIS_URL, SWARMKEEPER_PREFIX: prefix }), 'cli');
  tempDir = await mkdtemp(join(tmpdir(), 'swarmkeeper-http-'));
  tokenFile = join(tempDir, 'token');
  // Trailing newline as `echo token > file` leaves it: the server trims it.
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  metrics = new Metrics();
  readiness = { redis: true, docker: true, synced: true, leader: false };
  port = await startServer();
});

beforeEach(() => {
  storeCalls = [];
});

afterAll(async () => {
  for (const server of servers) await server.close();
  await store.close();
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await rm(tempDir, { recursive: true, force: true });
});

describe('probes and metrics', () => {
  it('answers /healthz with ok, without a token', async () => {
    const reply = await send('GET', '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.text.trim()).toBe('ok');
    expect(reply.headers['cache-control']).toBe('no-store');
  });

  it('answers /readyz 200 when ready, as a follower too, and 503 naming what is not ready', async () => {
    const ready = await send('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(json(ready)).toMatchObject({ ready: true, notReady: [], checks: { leader: false } });

    readiness = { redis: true, docker: false, synced: false, leader: true };
    const notReady = await send('GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(json(notReady)).toMatchObject({ ready: false, notReady: ['docker', 'synced'] });

    readiness = { redis: true, docker: true, synced: true, leader: true };
    expect((await send('GET', '/readyz')).status).toBe(200);
  });

  it('answers /readyz 503 without details when the readiness check itself fails', async () => {
    const server = createHttpServer({
      log: createLogger('debug', logSink()),
      metrics,
      readiness: () => Promise.reject(new Error('redis://:hunter2@10.0.0.1 refused')),
    });
    servers.push(server);
    const { port: otherPort } = await server.listen('127.0.0.1:0');
    const reply = await send('GET', '/readyz', { port: otherPort });
    expect(reply.status).toBe(503);
    expect(json(reply)).toMatchObject({ ready: false });
    expect(reply.text).not.toContain('hunter2');
    // Without a users API, its paths do not exist.
    expect((await send('GET', '/api/v1/users/alice', { port: otherPort, headers: auth() })).status).toBe(404);
  });

  it('serves every swarmkeeper series and the default process metrics', async () => {
    metrics.recordReconcile('Service', 'done', 0.2);
    metrics.recordReconcile('Service', 'retry', 1.5);
    metrics.recordDrift('Network');
    metrics.setQueueDepth(3);
    metrics.addRetries(2);
    metrics.addRetries(-1);
    metrics.setLeader(true);
    metrics.setResourceCounts(new Map([['Service', new Map([['Error', 2]])]]));
    metrics.setResourceCounts(new Map([['Service', new Map([['Synced', 4]])]]));
    metrics.setHomeUsage('alice', 1024, 2048);
    metrics.setHomeUsage('gone', 1, 2);
    metrics.clearHomeUsage('gone');

    const reply = await send('GET', '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toContain('text/plain');
    for (const name of SERIES) expect(reply.text).toContain(`# TYPE ${name} `);
    expect(reply.text).toContain('process_cpu_seconds_total');
    expect(reply.text).toContain('swarmkeeper_reconcile_total{kind="Service",result="retry"} 1');
    expect(reply.text).toContain('swarmkeeper_workqueue_retries_total 2');
    expect(reply.text).toContain('swarmkeeper_leader 1');
    expect(reply.text).toContain('swarmkeeper_resources{kind="Service",sync="Synced"} 4');
    // The earlier Error count is replaced, not left behind.
    expect(reply.text).toContain('swarmkeeper_resources{kind="Service",sync="Error"} 0');
    expect(reply.text).toContain('swarmkeeper_home_folder_quota_bytes{user="alice"} 2048');
    expect(reply.text).not.toContain('user="gone"');
  });

  it('keeps separate registries apart', async () => {
    const other = new Metrics();
    other.setQueueDepth(99);
    expect(await other.text()).toContain('swarmkeeper_workqueue_depth 99');
    expect(await metrics.text()).not.toContain('swarmkeeper_workqueue_depth 99');
  });

  it('answers unknown paths 404 and wrong methods 405, as JSON', async () => {
    const missing = await send('GET', '/nope');
    expect(missing.status).toBe(404);
    expect(errorOf(missing).code).toBe('SK_HTTP_REQUEST');

    const wrongMethod = await send('POST', '/healthz');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET, HEAD');

    const usersWrongMethod = await send('DELETE', '/api/v1/users/alice', { headers: auth() });
    expect(usersWrongMethod.status).toBe(405);
    expect(usersWrongMethod.headers.allow).toBe('GET, PUT');
    expect(storeCalls).toEqual([]);
  });
});

describe('the users API', () => {
  it('registers a user (201), then reports it unchanged (200), and stores the spec', async () => {
    const created = await putUser('alice', { email: 'alice@example.org', quota: '2Gi' });
    expect(created.status).toBe(201);
    expect(json(created)).toEqual({ name: 'alice', email: 'alice@example.org', quota: '2Gi' });

    const record = await store.get('User', 'alice');
    expect(record?.ok && record.resource).toMatchObject({
      kind: 'User',
      metadata: { name: 'alice' },
      spec: { email: 'alice@example.org', quota: '2Gi' },
    });

    const again = await putUser('alice', { email: 'alice@example.org', quota: '2Gi' });
    expect(again.status).toBe(200);
  });

  it('accepts a charset parameter and an e-mail-shaped name', async () => {
    const reply = await putUser(
      'bob@example.org',
      { email: 'bob@example.org' },
      { ...auth(), 'content-type': 'Application/JSON; charset=UTF-8' },
    );
    expect(reply.status).toBe(201);
    expect(
      (await send('GET', `/api/v1/users/${encodeURIComponent('bob@example.org')}`, { headers: auth() }))
        .status,
    ).toBe(200);
  });

  it('keeps labels, annotations, homeFolders and fields the body leaves out; null removes', async () => {
    await store.apply([
      user(
        'carol',
        { email: 'old@example.org', quota: '5Gi', homeFolders: 'nfs' },
        {
          labels: { team: 'physics' },
          annotations: { 'swarmkeeper/discovered': 'true', note: 'kept' },
        },
      ),
    ]);
    const reply = await putUser('carol', { email: 'carol@example.org' });
    expect(reply.status).toBe(200);
    expect(json(reply)).toEqual({ name: 'carol', email: 'carol@example.org', quota: '5Gi' });

    const record = await store.get('User', 'carol');
    expect(record?.ok && record.resource).toEqual({
      kind: 'User',
      // Registered through the API, so no longer merely discovered.
      metadata: { name: 'carol', labels: { team: 'physics' }, annotations: { note: 'kept' } },
      spec: { email: 'carol@example.org', quota: '5Gi', homeFolders: 'nfs' },
    });

    const cleared = await putUser('carol', { quota: null });
    expect(json(cleared)).toEqual({ name: 'carol', email: 'carol@example.org', quota: null });
    const after = await store.get('User', 'carol');
    expect(after?.ok && after.resource.spec).toEqual({ email: 'carol@example.org', homeFolders: 'nfs' });
  });

  it('reports the folder status the controller wrote', async () => {
    await putUser('dave', {});
    const pending = await send('GET', '/api/v1/users/dave', { headers: auth() });
    expect(pending.status).toBe(200);
    expect(json(pending)).toEqual({
      name: 'dave',
      email: null,
      quota: null,
      folder: { ready: false, sync: null, health: null, message: null },
    });

    await store.writeStatus('User', 'dave', { sync: 'Synced', health: 'Degraded', message: 'quota not set' });
    expect(json(await send('GET', '/api/v1/users/dave', { headers: auth() })).folder).toEqual({
      ready: false,
      sync: 'Synced',
      health: 'Degraded',
      message: 'quota not set',
    });

    await store.writeStatus('User', 'dave', { sync: 'Synced', health: 'Healthy', message: 'folder ready' });
    expect(json(await send('GET', '/api/v1/users/dave', { headers: auth() })).folder).toMatchObject({
      ready: true,
      sync: 'Synced',
      health: 'Healthy',
    });
  });

  it('answers 404 for a user that does not exist', async () => {
    const reply = await send('GET', '/api/v1/users/nobody', { headers: auth() });
    expect(reply.status).toBe(404);
    expect(errorOf(reply).code).toBe('SK_NOT_FOUND');
  });

  it('answers 409 when the stored record is invalid, and leaves it alone', async () => {
    await redis.hset(new KeySpace(prefix).desired('User', 'broken'), { email: 'not-an-email' });
    const before = await snapshot();
    const reply = await putUser('broken', { email: 'b@example.org' });
    expect(reply.status).toBe(409);
    expect(await snapshot()).toEqual(before);
  });
});

describe('refusals', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong token', auth('0'.repeat(64))],
    ['the token with a suffix', auth(`${TOKEN}x`)],
    ['a token prefix', auth(TOKEN.slice(0, 10))],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ])('answers 401 to %s, touching nothing', async (_label, headers: OutgoingHttpHeaders) => {
    const before = await snapshot();
    const put = await putUser(
      'mallory',
      { email: 'm@example.org' },
      { ...headers, 'content-type': 'application/json' },
    );
    const get = await send('GET', '/api/v1/users/alice', { headers });
    for (const reply of [put, get]) {
      expect(reply.status).toBe(401);
      expect(reply.headers['www-authenticate']).toContain('Bearer');
      expect(errorOf(reply).code).toBe('SK_UNAUTHORIZED');
    }
    expect(storeCalls).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it('answers 413 to a body over 16 KiB, and stays usable after draining it', async () => {
    const before = await snapshot();
    const reply = await putUser('erin', { email: 'erin@example.org', padding: 'x'.repeat(17 * 1024) });
    expect(reply.status).toBe(413);
    const large = await send('PUT', '/api/v1/users/erin', {
      body: Buffer.alloc(900 * 1024, 0x20),
      headers: jsonHeaders(),
    });
    expect(large.status).toBe(413);
    expect(await snapshot()).toEqual(before);
    expect((await send('GET', '/healthz')).status).toBe(200);
  });

  it.each([
    ['text/plain', { ...auth(), 'content-type': 'text/plain' }],
    ['no content type', auth()],
    ['another charset', { ...auth(), 'content-type': 'application/json; charset=latin1' }],
  ])('answers 415 to %s', async (_label, headers: OutgoingHttpHeaders) => {
    const reply = await putUser('frank', { email: 'frank@example.org' }, headers);
    expect(reply.status).toBe(415);
    expect(storeCalls).toEqual([]);
  });

  it('answers 400 to malformed JSON', async () => {
    const reply = await send('PUT', '/api/v1/users/frank', { body: '{"email": ', headers: jsonHeaders() });
    expect(reply.status).toBe(400);
    expect(errorOf(reply)).toMatchObject({
      code: 'SK_HTTP_REQUEST',
      message: 'the request body is not valid JSON',
    });
    expect(storeCalls).toEqual([]);
  });

  it.each([
    ['a bad e-mail', { email: 'not-an-email' }, 'email'],
    ['a bad quota', { quota: '1Zi' }, 'quota'],
    ['an unknown field', { email: 'g@example.org', homeFolders: 'other' }, 'homeFolders'],
    ['a body that is not an object', ['g@example.org'], ''],
  ])('answers 400 to %s, naming the field', async (_label, body, field) => {
    const reply = await putUser('grace', body);
    expect(reply.status).toBe(400);
    const error = errorOf(reply);
    expect(error.code).toBe('SK_INVALID_RESOURCE');
    expect(error.fields?.map((f) => f.path)).toContain(field);
    expect(storeCalls).toEqual([]);
  });

  it.each([
    '..',
    'a%2Fb',
    '%2e%2e',
    '%2E%2E',
    '..%2F',
    '..%2F..%2Fetc',
    '%00',
    'a%00b',
    '.hidden',
    '%zz',
    'a%20b',
  ])('answers 400 to the name %s, touching nothing', async (name) => {
    const before = await snapshot();
    const put = await putUser(name, { email: 'h@example.org' });
    const get = await send('GET', `/api/v1/users/${name}`, { headers: auth() });
    for (const reply of [put, get]) {
      expect(reply.status).toBe(400);
      expect(errorOf(reply).fields?.map((f) => f.path)).toContain('name');
    }
    expect(storeCalls).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it('answers 429 with Retry-After under a flood, per client, but never to probes', async () => {
    const limitedPort = await startServer({ rate: 5, burst: 10 });
    const statuses: number[] = [];
    let retryAfter: string | string[] | undefined;
    for (let i = 0; i < 200; i++) {
      const reply = await send('GET', '/api/v1/users/alice', { headers: auth(), port: limitedPort });
      statuses.push(reply.status);
      if (reply.status === 429) retryAfter ??= reply.headers['retry-after'];
    }
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(100);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await send('GET', '/healthz', { port: limitedPort })).status).toBe(200);
    expect((await send('GET', '/metrics', { port: limitedPort })).status).toBe(200);
  });

  it('refuses to start with an empty token file', async () => {
    const empty = join(tempDir, 'empty');
    await writeFile(empty, '\n');
    const server = createHttpServer({
      log: createLogger('silent'),
      metrics,
      readiness: () => readiness,
      users: { store, tokenFile: empty },
    });
    await expect(server.listen('127.0.0.1:0')).rejects.toBeInstanceOf(ConfigError);
    await expect(
      createHttpServer({ log: createLogger('silent'), metrics, readiness: () => readiness }).listen(
        'nonsense',
      ),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('secrets', () => {
  it('never shows the token in a response or a log line', () => {
    expect(replies.length).toBeGreaterThan(100);
    expect(logLines.length).toBeGreaterThan(100);
    for (const reply of replies) {
      expect(reply.text).not.toContain(TOKEN);
      expect(JSON.stringify(reply.headers)).not.toContain(TOKEN);
    }
    for (const line of logLines) expect(line).not.toContain(TOKEN);
  });

  it('logs each refused request once, with a fixed message and fields', () => {
    const refused = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.status === 401);
    expect(refused.length).toBeGreaterThan(0);
    for (const line of refused) {
      expect(line).toMatchObject({
        msg: 'http request refused',
        code: 'SK_UNAUTHORIZED',
        path: '/api/v1/users/{name}',
      });
    }
  });
});

/**
 * The JupyterHub pre-spawn hook, run as its command against the real HTTP server and Redis store.
 * The test plays the controller: it writes the User's folder status once the hook has registered it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDesiredStore } from '../../src/desired/open.js';
import type { RedisDesiredStore } from '../../src/desired/redis-store.js';
import { Metrics } from '../../src/http/metrics.js';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { dropPrefix, rawRedis, REDIS_URL, uniquePrefix } from '../support/lab.js';

const HOOK = fileURLToPath(new URL('../../deploy/jupyterhub/swarmkeeper_hook.py', import.meta.url));
const TOKEN = randomBytes(24).toString('hex');

interface HookRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const prefix = uniquePrefix('hook');
const redis: Redis = rawRedis();
let store: RedisDesiredStore;
let server: HttpServer;
let api: string;
let tempDir: string;
let tokenFile: string;

function runHook(args: readonly string[]): Promise<HookRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [HOOK, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Stands in for the controller: once the User record appears, reports its folder `Synced`/`Healthy`. */
async function actAsController(name: string, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const record = await store.get('User', name);
    if (record?.ok) {
      // A moment of Pending first, as a real controller shows while it makes the folder.
      await store.writeStatus('User', name, { sync: 'Pending', health: 'Progressing' });
      await sleep(300);
      await store.writeStatus('User', name, { sync: 'Synced', health: 'Healthy', message: 'folder ready' });
      return;
    }
    await sleep(50);
  }
}

beforeAll(async () => {
  store = await openDesiredStore(loadConfig({ REDIS_URL, SWARMKEEPER_PREFIX: prefix }), 'cli');
  tempDir = await mkdtemp(join(tmpdir(), 'swarmkeeper-hook-'));
  tokenFile = join(tempDir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  server = createHttpServer({
    log: createLogger('silent'),
    metrics: new Metrics(),
    readiness: () => ({ redis: true, docker: true, synced: true, leader: true }),
    users: { store, tokenFile },
  });
  const { port } = await server.listen('127.0.0.1:0');
  api = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server.close();
  await store.close();
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await rm(tempDir, { recursive: true, force: true });
});

describe('swarmkeeper_hook.py', () => {
  it('registers the user and exits 0 once the controller reports the folder ready', async () => {
    const controller = new AbortController();
    const acting = actAsController('alice', controller.signal);
    const run = await runHook([
      '--api',
      api,
      '--token-file',
      tokenFile,
      '--user',
      'alice',
      '--email',
      'alice@example.org',
      '--timeout',
      '10',
    ]);
    controller.abort();
    await acting;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const record = await store.get('User', 'alice');
    expect(record?.ok && record.resource.spec).toEqual({ email: 'alice@example.org' });
  });

  it('exits 1 with a one-line reason when the folder never becomes ready', async () => {
    await store.writeStatus('User', 'bob', {
      sync: 'Error',
      health: 'Degraded',
      message: 'xfs_quota failed',
    });
    const run = await runHook(['--api', api, '--token-file', tokenFile, '--user', 'bob', '--timeout', '1']);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('not ready after 1 s');
    expect(run.stderr).toContain('xfs_quota failed');
    // Registered all the same: the controller will keep trying after the hub gives up.
    expect((await store.get('User', 'bob'))?.ok).toBe(true);
  });

  it('exits 2 when swarmkeeper refuses the request, without retrying until the timeout', async () => {
    const wrongToken = join(tempDir, 'wrong');
    await writeFile(wrongToken, 'not-the-token\n');
    const started = Date.now();
    const unauthorized = await runHook([
      '--api',
      api,
      '--token-file',
      wrongToken,
      '--user',
      'carol',
      '--timeout',
      '30',
    ]);
    expect(unauthorized.code).toBe(2);
    expect(unauthorized.stderr).toContain('401');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await store.get('User', 'carol')).toBeUndefined();

    const badName = await runHook([
      '--api',
      api,
      '--token-file',
      tokenFile,
      '--user',
      '../etc',
      '--timeout',
      '30',
    ]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('name');

    const badEmail = await runHook([
      '--api',
      api,
      '--token-file',
      tokenFile,
      '--user',
      'dave',
      '--email',
      'not-an-email',
      '--timeout',
      '30',
    ]);
    expect(badEmail.code).toBe(2);
    expect(badEmail.stderr).toContain('email');
    for (const run of [unauthorized, badName, badEmail]) expect(run.stderr).not.toContain(TOKEN);
  });

  it('works as the hub calls it: a coroutine pre_spawn_hook, e-mail taken from an e-mail username', async () => {
    const controller = new AbortController();
    const acting = actAsController('frank@example.org', controller.signal);
    const script = [
      'import asyncio, sys, types',
      'sys.path.insert(0, sys.argv[1])',
      'from swarmkeeper_hook import make_pre_spawn_hook',
      'spawner = types.SimpleNamespace(user=types.SimpleNamespace(name=sys.argv[4]))',
      'asyncio.run(make_pre_spawn_hook(sys.argv[2], sys.argv[3], timeout=10, interval=0.1)(spawner))',
    ].join('\n');
    const child = spawn('python3', ['-c', script, dirname(HOOK), api, tokenFile, 'frank@example.org'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    controller.abort();
    await acting;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const record = await store.get('User', 'frank@example.org');
    expect(record?.ok && record.resource.spec).toEqual({ email: 'frank@example.org' });
  });

  it('exits 2 when the token file is missing', async () => {
    const run = await runHook(['--api', api, '--token-file', join(tempDir, 'absent'), '--user', 'erin']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('token file');
  });
});

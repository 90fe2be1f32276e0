/**
 * Security against the real parts: Redis AUTH (password from a file, never argv) and TLS on a
 * private redis-server; secrets (Redis password, API token, Secret data) absent from every output
 * the controller and CLI produce; and the controller acting only on objects it owns.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LABELS } from '../../src/resources/metadata.js';
import { toManifest, type Resource } from '../../src/resources/resource.js';
import { runCli } from '../support/cli.js';
import { ControllerLab } from '../support/controller.js';
import { ControllerProcess, ensureBuilt } from '../support/controller-process.js';
import { testDocker } from '../support/docker-cleanup.js';
import { eventually } from '../support/eventually.js';
import { TEST_RUN_LABEL, testRunId } from '../support/lab.js';
import { PrivateRedis } from '../support/redis-server.js';

const run = promisify(execFile);
const docker = async (...args: string[]): Promise<string> => (await run('docker', args)).stdout.trim();

const SLEEPER = { image: 'local/busybox:1', command: ['sleep', '3600'], stopGracePeriod: '1s' };

async function serviceSpec(name: string) {
  const services = await testDocker.listServices({ filters: JSON.stringify({ name: [name] }) });
  return services.find((s) => s.Spec?.Name === name);
}

const secretValue = (label: string): string => `${label}-${randomBytes(12).toString('hex')}`;

let lab: ControllerLab;
let work: string;
const children: ControllerProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);
beforeEach(async () => {
  lab = new ControllerLab('security');
  await lab.open();
  work = await mkdtemp(path.join(tmpdir(), 'sk-security-'));
});
afterEach(async () => {
  for (const child of children.splice(0)) await child.stop();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await lab.close();
  await rm(work, { recursive: true, force: true });
});

function startCli(env: Record<string, string>, args: readonly string[] = ['run']): ControllerProcess {
  const child = ControllerProcess.start(env, args);
  children.push(child);
  return child;
}

/** A file readable by its owner only, as a Docker secret would be mounted. */
async function secretFile(name: string, content: string): Promise<string> {
  const file = path.join(work, name);
  await writeFile(file, content);
  await chmod(file, 0o600);
  return file;
}

async function manifestFile(resources: readonly Resource[]): Promise<string> {
  const file = path.join(work, `manifests-${randomBytes(3).toString('hex')}.json`);
  await writeFile(file, resources.map((r) => JSON.stringify(toManifest(r))).join('\n---\n'));
  return file;
}

/** Every field of every hash under `prefix`, as one string. */
async function dumpPrefix(redis: Redis, prefix: string): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'hash') out.push(key, JSON.stringify(await redis.hgetall(key)));
      else if (type === 'string') out.push(key, (await redis.get(key)) ?? '');
      else out.push(key, type);
    }
  } while (cursor !== '0');
  return out.join('\n');
}

function expectNone(text: string, secrets: readonly string[], where: string): void {
  for (const secret of secrets) expect(text.includes(secret), `${where} contains a secret`).toBe(false);
}

describe('Redis AUTH', () => {
  it('connects the CLI and the controller with REDIS_PASSWORD_FILE, never argv, and fails wrong or missing passwords with SK_STORE_UNAVAILABLE', async () => {
    const password = secretValue('redis-pw');
    const redis = await PrivateRedis.start({ password, persist: false });
    cleanups.push(() => redis.destroy());
    const passwordFile = await secretFile('redis-password', `${password}\n`);
    const env = { REDIS_URL: redis.url, REDIS_PASSWORD_FILE: passwordFile, SWARMKEEPER_PREFIX: lab.prefix };

    const web = lab.name('web');
    const applied = await runCli(
      ['apply', '-f', await manifestFile([lab.resource('Service', web, SLEEPER)])],
      env,
    );
    expect(applied, applied.stderr).toMatchObject({ code: 0 });
    const got = await runCli(['get', 'Service', web, '-o', 'json'], env);
    expect(got.code).toBe(0);
    expect(got.stdout).toContain(web);

    // The real controller, with the password only in the file it names.
    const controller = startCli({ ...env, SWARMKEEPER_LEADER_ELECTION: 'false' });
    await eventually(async () => expect(await serviceSpec(web)).toBeDefined());
    const cmdline = await readFile(`/proc/${controller.pid}/cmdline`, 'utf8');
    const environ = await readFile(`/proc/${controller.pid}/environ`, 'utf8');
    expectNone(cmdline, [password], 'the controller command line');
    expectNone(environ, [password], 'the controller environment');
    expect(environ).toContain(`REDIS_PASSWORD_FILE=${passwordFile}`);
    const raw = new Redis(redis.url, { password });
    cleanups.push(() => Promise.resolve(raw.disconnect()));
    expect(String(await raw.call('CLIENT', 'LIST'))).toContain('name=swarmkeeper-controller');
    await controller.stop();
    expectNone(
      controller.lines.map((l) => JSON.stringify(l)).join('\n') + controller.stderr,
      [password],
      'logs',
    );

    const wrongPassword = secretValue('wrong-pw');
    const wrongFile = await secretFile('wrong-password', `${wrongPassword}\n`);
    const failures = {
      wrong: await runCli(['get'], { ...env, REDIS_PASSWORD_FILE: wrongFile }),
      missing: await runCli(['get'], { REDIS_URL: redis.url, SWARMKEEPER_PREFIX: lab.prefix }),
      'wrong in the URL': await runCli(['get'], {
        REDIS_URL: `redis://:${wrongPassword}@127.0.0.1:${redis.port}`,
        SWARMKEEPER_PREFIX: lab.prefix,
      }),
    };
    for (const [how, result] of Object.entries(failures)) {
      expect(result.code, how).toBe(1);
      expect(result.stderr, how).toMatch(/^error \[SK_STORE_UNAVAILABLE\]: .*(WRONGPASS|NOAUTH)/m);
      expectNone(result.stdout + result.stderr, [password, wrongPassword], `the ${how} password error`);
    }
    console.info(
      `Redis AUTH errors: ${Object.values(failures)
        .map((f) => f.stderr.trim())
        .join(' | ')}`,
    );

    // The controller with a wrong password says so (once, with the code) and is not ready.
    const denied = startCli({ ...env, REDIS_PASSWORD_FILE: wrongFile, SWARMKEEPER_LEADER_ELECTION: 'false' });
    const line = await denied.waitForLog(
      'desired store unavailable; repairing from cached state',
      {},
      15_000,
    );
    expect(line.code).toBe('SK_STORE_UNAVAILABLE');
    expect(String(line.err)).toMatch(/WRONGPASS/);
    const listening = await denied.waitForLog('http listening');
    const readyz = await fetch(`http://${String(listening.address)}/readyz`);
    expect(readyz.status).toBe(503);
    expect(((await readyz.json()) as { checks: { redis: boolean } }).checks.redis).toBe(false);
    await denied.stop();
    const deniedOutput = denied.lines.map((l) => JSON.stringify(l)).join('\n') + denied.stderr;
    expectNone(deniedOutput, [password, wrongPassword], 'the denied controller output');
  }, 90_000);

  it('speaks TLS to a rediss:// URL, verifying the server certificate', async () => {
    const ca = path.join(work, 'ca.pem');
    const caKey = path.join(work, 'ca.key');
    const cert = path.join(work, 'server.pem');
    const key = path.join(work, 'server.key');
    const ext = path.join(work, 'server.ext');
    await run(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca].concat([
        '-days',
        '1',
        '-subj',
        '/CN=swarmkeeper test CA',
      ]),
    );
    await run(
      'openssl',
      ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', `${cert}.csr`].concat([
        '-subj',
        '/CN=localhost',
      ]),
    );
    await writeFile(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    await run(
      'openssl',
      ['x509', '-req', '-in', `${cert}.csr`, '-CA', ca, '-CAkey', caKey, '-CAcreateserial'].concat([
        '-out',
        cert,
        '-days',
        '1',
        '-extfile',
        ext,
      ]),
    );
    const password = secretValue('tls-pw');
    const redis = await PrivateRedis.start({ password, persist: false, tls: { cert, key, ca } });
    cleanups.push(() => redis.destroy());
    expect(redis.url).toMatch(/^rediss:\/\/localhost:\d+$/);
    const passwordFile = await secretFile('redis-password', password);
    const env = { REDIS_URL: redis.url, REDIS_PASSWORD_FILE: passwordFile, SWARMKEEPER_PREFIX: lab.prefix };
    const web = lab.name('web');
    const manifests = await manifestFile([lab.resource('Service', web, SLEEPER)]);

    // NODE_EXTRA_CA_CERTS is read at process start, so these are real CLI processes.
    const trusted = { ...env, NODE_EXTRA_CA_CERTS: ca };
    const apply = startCli(trusted, ['apply', '-f', manifests]);
    expect(await apply.waitForExit(), apply.stderr).toEqual({ code: 0, signal: null });

    const untrusted = startCli(env, ['get', 'Service', web]);
    expect((await untrusted.waitForExit()).code).toBe(1);
    expect(untrusted.stderr).toMatch(/SK_STORE_UNAVAILABLE.*(self-signed|certificate)/i);
    expectNone(untrusted.stderr, [password], 'the TLS error');

    const plain = startCli({ ...trusted, REDIS_URL: `redis://127.0.0.1:${redis.port}` }, [
      'get',
      'Service',
      web,
    ]);
    expect((await plain.waitForExit()).code).toBe(1);
    expect(plain.stderr).toContain('SK_STORE_UNAVAILABLE');

    const controller = startCli({ ...trusted, SWARMKEEPER_LEADER_ELECTION: 'false' });
    await eventually(async () => expect(await serviceSpec(web)).toBeDefined());
    // The test's own client trusts the CA explicitly and reads the status the controller wrote over TLS.
    const raw = new Redis(redis.url, { password, tls: { ca: await readFile(ca), servername: 'localhost' } });
    cleanups.push(() => Promise.resolve(raw.disconnect()));
    await eventually(async () =>
      expect((await raw.hgetall(`${lab.prefix}:status:Service:${web}`)).sync).toBe('Synced'),
    );
    await controller.stop();
    expectNone(
      controller.lines.map((l) => JSON.stringify(l)).join('\n'),
      [password],
      'the TLS controller logs',
    );
  }, 90_000);
});

describe('secrets never appear', () => {
  it('keeps the Redis password, the API token and Secret data out of logs, status, get, /metrics and /readyz', async () => {
    const password = secretValue('redis-pw');
    const token = secretValue('api-token');
    const data = secretValue('secret-data');
    const rotated = secretValue('rotated-data');
    const base64 = (s: string): string => Buffer.from(s).toString('base64');
    const secrets = [password, token, data, rotated, base64(data), base64(rotated)];
    const redis = await PrivateRedis.start({ password, persist: false });
    cleanups.push(() => redis.destroy());
    const passwordFile = await secretFile('redis-password', password);
    const tokenFile = await secretFile('api-token', `${token}\n`);
    const raw = new Redis(redis.url, { password });
    cleanups.push(() => Promise.resolve(raw.disconnect()));
    const env = { REDIS_URL: redis.url, REDIS_PASSWORD_FILE: passwordFile, SWARMKEEPER_PREFIX: lab.prefix };

    const secret = lab.name('hubsecret');
    const hub = lab.name('hub');
    const applied = await runCli(
      [
        'apply',
        '-f',
        await manifestFile([
          lab.resource('Secret', secret, { data }),
          lab.resource('Service', hub, { ...SLEEPER, secrets: [{ source: secret, target: 'hub_token' }] }),
        ]),
      ],
      env,
    );
    expect(applied.code, applied.stderr).toBe(0);
    await lab.start({ env: { ...env, SWARMKEEPER_API_TOKEN_FILE: tokenFile }, serveHttp: true });
    const base = `http://127.0.0.1:${lab.address?.port}`;
    await eventually(async () =>
      expect((await raw.hgetall(`${lab.prefix}:status:Service:${hub}`)).sync).toBe('Synced'),
    );

    // A rotation, a drift the controller logs, and API traffic with good and bad tokens.
    await raw.hset(`${lab.prefix}:desired:Secret:${secret}`, 'data', rotated);
    await eventually(async () => {
      const names = (await serviceSpec(hub))?.Spec?.TaskTemplate;
      const mounted = names && 'ContainerSpec' in names ? names.ContainerSpec?.Secrets : undefined;
      expect(mounted?.map((s) => s.SecretName)).toHaveLength(1);
      expect(lab.logsWith('drift detected', { kind: 'Secret', name: secret }).length).toBeGreaterThan(0);
      expect(lab.logsWith('updated', { kind: 'Service', name: hub }).length).toBeGreaterThan(0);
    });
    const good = await fetch(`${base}/api/v1/users/alice`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'alice@example.org' }),
    });
    expect(good.status).toBeLessThan(500);
    const bad = await fetch(`${base}/api/v1/users/alice`, { headers: { authorization: `Bearer ${token}x` } });
    expect(bad.status).toBe(401);
    const answers = [await good.text(), await bad.text()];
    for (const probe of ['/metrics', '/readyz', '/healthz']) {
      const response = await fetch(`${base}${probe}`);
      answers.push(`${probe}: ${response.status} ${await response.text()}`);
    }
    expectNone(answers.join('\n'), secrets, 'the HTTP answers');
    expect(answers.join('\n')).toContain('swarmkeeper_');

    const outputs: string[] = [];
    for (const args of [
      ['get'],
      ['get', '-o', 'yaml'],
      ['get', '-o', 'json'],
      ['get', 'Secret'],
      ['get', 'Secret', secret, '-o', 'yaml'],
      ['get', 'Secret', secret, '-o', 'json'],
      ['status'],
      ['status', '-o', 'json'],
    ]) {
      const result = await runCli(args, env);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBeLessThanOrEqual(1);
      outputs.push(result.stdout, result.stderr);
    }
    expect(outputs.join('\n')).toContain(secret);
    expectNone(outputs.join('\n'), secrets, 'CLI output');

    await lab.stopAll();
    const status = await dumpPrefix(raw, `${lab.prefix}:status`);
    expect(status).toContain(hub);
    expectNone(status, secrets, 'status hashes');
    const logs = lab.logs.map((l) => JSON.stringify(l)).join('\n');
    expect(logs).toContain('drift detected');
    expectNone(logs, secrets, 'controller logs');
  }, 90_000);
});

describe('the controller acts only on objects it owns', () => {
  it('reports a Conflict on unmanaged look-alikes and removes nothing owned by another deployment', async () => {
    const runId = testRunId();
    const foreignService = lab.name('svc');
    const foreignNetwork = lab.name('net');
    const foreignVolume = lab.name('vol');
    const otherService = lab.name('other-svc');
    const otherNetwork = lab.name('other-net');
    const otherVolume = lab.name('other-vol');
    const mine = lab.name('mine');
    // Enough resources stay that dropping seven at once does not trip the prune guard.
    const keepers = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => lab.name(`keep${n}`));
    const labels = (owner: string, managed: boolean): string[] =>
      [
        `${TEST_RUN_LABEL}=${runId}`,
        `${LABELS.specHash}=0123456789abcdef`,
        `${LABELS.owner}=${owner}`,
        ...(managed ? [`${LABELS.managed}=true`] : []),
      ].flatMap((l) => ['--label', l]);
    const otherOwner = `${lab.prefix}-other`;
    const createService = (name: string, l: string[]): Promise<string> =>
      docker(
        'service',
        'create',
        '--detach',
        '--name',
        name,
        ...l,
        '--replicas',
        '2',
        'local/busybox:1',
        'sleep',
        '3600',
      );
    // Look-alikes carrying this deployment's owner and a spec hash, but not the managed label.
    await createService(foreignService, labels(lab.prefix, false));
    await docker('network', 'create', '--driver', 'overlay', ...labels(lab.prefix, false), foreignNetwork);
    await docker('volume', 'create', ...labels(lab.prefix, false), foreignVolume);
    // Managed, but by another deployment.
    await createService(otherService, labels(otherOwner, true));
    await docker('network', 'create', '--driver', 'overlay', ...labels(otherOwner, true), otherNetwork);
    await docker('volume', 'create', ...labels(otherOwner, true), otherVolume);

    const fingerprint = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const name of [foreignService, otherService]) {
        const service = await serviceSpec(name);
        out.push(
          `${name} ${service?.ID} ${service?.Version?.Index} ${service?.Spec?.Mode?.Replicated?.Replicas}`,
        );
      }
      for (const name of [foreignNetwork, otherNetwork])
        out.push(
          await docker(
            'network',
            'inspect',
            '-f',
            '{{.Name}} {{.Id}} {{json .Labels}} {{.Attachable}}',
            name,
          ),
        );
      for (const name of [foreignVolume, otherVolume])
        out.push(await docker('volume', 'inspect', '-f', '{{.Name}} {{.CreatedAt}} {{json .Labels}}', name));
      return out;
    };
    const before = await fingerprint();
    const since = Date.now();

    const contested = [
      lab.resource('Service', foreignService, { ...SLEEPER, replicas: 1 }),
      lab.resource('Network', foreignNetwork, { attachable: true }),
      lab.resource('Volume', foreignVolume, { reclaimPolicy: 'Delete' }),
      lab.resource('Service', otherService, { ...SLEEPER, replicas: 1 }),
      lab.resource('Network', otherNetwork, { attachable: true }),
      lab.resource('Volume', otherVolume, { reclaimPolicy: 'Delete' }),
    ];
    await lab.apply(
      ...contested,
      lab.resource('Service', mine, SLEEPER),
      ...keepers.map((name) => lab.resource('Config', name, { data: name })),
    );
    await lab.start();
    await eventually(async () => {
      for (const resource of contested) {
        const status = await lab.store.readStatus(resource.kind, resource.metadata.name);
        expect(status?.sync, `${resource.kind}/${resource.metadata.name}`).toBe('Conflict');
      }
      expect(await serviceSpec(mine)).toBeDefined();
    });
    const conflicts = await Promise.all(
      contested.map(async (r) => (await lab.store.readStatus(r.kind, r.metadata.name))?.message),
    );
    console.info(`Conflict messages: ${conflicts.join(' | ')}`);
    expect(await fingerprint()).toEqual(before);

    // This deployment drops them all, and one object of its own (the control: that one must go).
    for (const resource of contested) await lab.store.delete(resource.kind, resource.metadata.name);
    await lab.store.delete('Service', mine);
    await eventually(async () => expect(await serviceSpec(mine)).toBeUndefined(), { timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(await fingerprint()).toEqual(before);
    expect(await lab.store.readGuard()).toBeUndefined();

    const events = await docker(
      'events',
      '--since',
      (since / 1000).toFixed(3),
      '--until',
      (Date.now() / 1000).toFixed(3),
      '--format',
      '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}{{.Actor.ID}}',
    );
    const touched = events
      .split('\n')
      .filter((line) => /^(service|network|volume) (update|remove|destroy|create)/.test(line))
      .filter((line) =>
        [foreignService, otherService, foreignNetwork, otherNetwork, foreignVolume, otherVolume].some((n) =>
          line.includes(n),
        ),
      );
    expect(touched).toEqual([]);
    expect(lab.logsWith('removed', { kind: 'Service', name: mine })).toHaveLength(1);
  }, 90_000);
});

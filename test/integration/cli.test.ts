import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifests } from '../../src/resources/manifest.js';
import { printableManifest } from '../../src/cli/format.js';
import { runCli } from '../support/cli.js';
import { dropPrefix, rawRedis, REDIS_URL, uniquePrefix } from '../support/lab.js';

const execFileAsync = promisify(execFile);

let redis: Redis;
let prefix: string;
let env: NodeJS.ProcessEnv;
let scratch: string;

beforeAll(async () => {
  redis = rawRedis();
  prefix = uniquePrefix('cli');
  env = { REDIS_URL, SWARMKEEPER_PREFIX: prefix };
  scratch = await mkdtemp(path.join(tmpdir(), 'sk-cli-'));
});

afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await rm(scratch, { recursive: true, force: true });
});

describe('swarmkeeper CLI against the real lab', () => {
  it('runs on a Docker engine whose Swarm is active', async () => {
    const { stdout } = await execFileAsync('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}']);
    expect(stdout.trim()).toBe('active');
  });

  it('apply -f manifests/examples/local, then get Service nginx -o yaml gives back what was applied', async () => {
    const applied = await runCli(['apply', '-f', 'manifests/examples/local'], env);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('Service/nginx created');

    const got = await runCli(['get', 'Service', 'nginx', '-o', 'yaml'], env);
    expect(got.code).toBe(0);
    const set = await loadManifests(['manifests/examples/local']);
    const nginx = set.resources.find(
      (r) => r.resource.kind === 'Service' && r.resource.metadata.name === 'nginx',
    );
    expect(nginx).toBeDefined();
    if (nginx) expect(parse(got.stdout)).toEqual(printableManifest(nginx.resource));

    const again = await runCli(['apply', '-f', 'manifests/examples/local'], env);
    expect(
      again.stdout
        .trim()
        .split('\n')
        .every((line) => line.endsWith(' unchanged')),
    ).toBe(true);
  });

  it('get -o yaml of everything round-trips through apply unchanged (secrets aside)', async () => {
    const got = await runCli(['get', '-o', 'yaml'], env);
    expect(got.code).toBe(0);
    const withoutSecrets = parseAllDocuments(got.stdout)
      .map((d) => d.toJS() as { kind: string })
      .filter((d) => d.kind !== 'Secret');
    const file = path.join(scratch, 'all.yaml');
    await writeFile(file, withoutSecrets.map((d) => JSON.stringify(d)).join('\n---\n'));
    const reapplied = await runCli(['apply', '-f', file], env);
    expect(reapplied.code).toBe(0);
    expect(reapplied.stdout).not.toMatch(/configured|created/);
  });

  it('shows a raw redis-cli edit through get, and an invalid one with its field path', async () => {
    await redis.hset(`${prefix}:desired:Service:nginx`, 'replicas', '2');
    const two = await runCli(['get', 'svc', 'nginx', '-o', 'json'], env);
    expect((JSON.parse(two.stdout) as { spec: { replicas: number } }).spec.replicas).toBe(2);

    await redis.hset(`${prefix}:desired:Service:nginx`, 'replicas', 'two');
    const table = await runCli(['get', 'Service'], env);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/nginx\s+Invalid\s+spec\.replicas/);
    expect(table.stdout).toMatch(/jupyterhubserver\s+Valid/);

    const yaml = await runCli(['get', 'Service', 'nginx', '-o', 'yaml'], env);
    expect(yaml.code).toBe(1);
    expect(yaml.stderr).toContain('spec.replicas');
  });

  it('creates a user with one HSET and deletes it with DEL or `delete`', async () => {
    await redis.hset(`${prefix}:desired:User:carol`, 'email', 'carol@example.org', 'quota', '2Gi');
    const got = await runCli(['get', 'User', 'carol', '-o', 'json'], env);
    expect(JSON.parse(got.stdout)).toMatchObject({
      kind: 'User',
      spec: { email: 'carol@example.org', quota: '2Gi' },
    });

    expect((await runCli(['delete', 'User', 'carol'], env)).code).toBe(0);
    const missing = await runCli(['get', 'User', 'carol'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SK_NOT_FOUND');
  });

  it('never prints Secret data', async () => {
    const secret = await redis.hget(`${prefix}:desired:Secret:oauth-client-secret`, 'data');
    expect(secret).toBeTruthy();
    for (const output of ['table', 'yaml', 'json']) {
      const run = await runCli(['get', '-o', output], env);
      expect(run.stdout).not.toContain(secret);
    }
  });

  it('apply writes nothing when any document is invalid', async () => {
    const file = path.join(scratch, 'mixed.yaml');
    await writeFile(
      file,
      'apiVersion: swarmkeeper/v1\nkind: Volume\nmetadata: {name: fresh-volume}\nspec: {}\n---\napiVersion: swarmkeeper/v1\nkind: Service\nmetadata: {name: broken}\nspec: {image: x, replicas: two}\n',
    );
    const run = await runCli(['apply', '-f', file], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${file}:9: spec.replicas`);
    expect(await redis.exists(`${prefix}:desired:Volume:fresh-volume`)).toBe(0);
  });

  it('reports an unreachable Redis with its code', async () => {
    const run = await runCli(['get'], { REDIS_URL: 'redis://127.0.0.1:1', SWARMKEEPER_PREFIX: prefix });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('SK_STORE_UNAVAILABLE');
  });
});

describe('the built swarmkeeper binary', () => {
  it('validate -f manifests/ exits 0 and a manifest with replicas: two exits 1 naming spec.replicas and its line', async () => {
    const ok = await execFileAsync('node', ['bin/swarmkeeper.js', 'validate', '-f', 'manifests/']);
    expect(ok.stdout).toMatch(/\d+ resources valid/);

    const bad = path.join(scratch, 'bad.yaml');
    await writeFile(
      bad,
      'apiVersion: swarmkeeper/v1\nkind: Service\nmetadata:\n  name: nginx\nspec:\n  image: nginx\n  replicas: two\n',
    );
    const failure = await execFileAsync('node', ['bin/swarmkeeper.js', 'validate', '-f', bad]).then(
      () => undefined,
      (error: unknown) => error as { code: number; stderr: string },
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain(`${bad}:7: spec.replicas`);
  });

  it('prints help for every command', async () => {
    for (const command of ['apply', 'get', 'delete', 'validate', 'schema']) {
      const { stdout } = await execFileAsync('node', ['bin/swarmkeeper.js', command, '--help']);
      expect(stdout).toContain(`Usage: swarmkeeper ${command}`);
    }
  });
});

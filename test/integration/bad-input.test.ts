/**
 * Bad input through the front door people actually use: raw redis-cli writes. A generated corpus
 * of several hundred invalid records (test/support/corpus.ts) must read back as Invalid with the
 * right field path, get status Invalid from a running controller, cause no Docker write at all,
 * and leave every valid resource (even one a bad edit just corrupted) exactly as it was.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { MAX_FIELD_BYTES } from '../../src/desired/codec.js';
import type { StoredRecord } from '../../src/desired/store.js';
import type { Kind } from '../../src/resources/kinds/index.js';
import { LABELS } from '../../src/resources/metadata.js';
import { ControllerLab } from '../support/controller.js';
import { countByCategory, generateCorpus, ONE_MIB, writeCase, type CorpusCase } from '../support/corpus.js';
import { testDocker } from '../support/docker-cleanup.js';
import { eventually } from '../support/eventually.js';

const run = promisify(execFile);
const docker = async (...args: string[]): Promise<string> =>
  (await run('docker', args, { maxBuffer: 64 * 1024 * 1024 })).stdout.trim();

const SLEEPER = { image: 'local/busybox:1', command: ['sleep', '3600'], stopGracePeriod: '1s' };

/** Writes the corpus as redis-cli would, a few commands in flight at a time. */
async function writeCorpus(lab: ControllerLab, corpus: readonly CorpusCase[]): Promise<void> {
  for (let i = 0; i < corpus.length; i += 32) {
    await Promise.all(corpus.slice(i, i + 32).map((c) => writeCase(lab.redis, c)));
  }
}

/** Every way a record falls short of what its case expects; empty when the store got it right. */
function shortfalls(c: CorpusCase, record: StoredRecord | undefined): string[] {
  if (record === undefined) return [`${c.id}: not listed`];
  if (record.ok) return [`${c.id}: read as a valid ${record.resource.kind}`];
  const paths = record.issues.map((i) => i.path);
  const problems: string[] = [];
  if (!paths.includes(c.expectedPath))
    problems.push(`${c.id}: expected an issue at ${c.expectedPath}, got ${JSON.stringify(paths)}`);
  if (record.issues.some((i) => i.message.trim() === ''))
    problems.push(`${c.id}: an issue without a message`);
  if (c.statusKind !== undefined && (record.kind !== c.kind || record.name !== c.name))
    problems.push(`${c.id}: reported as ${record.kind}/${record.name}`);
  return problems;
}

/** Names of every Docker object of the kinds swarmkeeper manages. */
async function dockerObjectNames(): Promise<string[]> {
  const [services, networks, volumes, containers, configs, secrets] = await Promise.all([
    testDocker.listServices(),
    testDocker.listNetworks(),
    testDocker.listVolumes(),
    testDocker.listContainers({ all: true }),
    testDocker.listConfigs(),
    testDocker.listSecrets(),
  ]);
  return [
    ...services.map((s) => s.Spec?.Name ?? ''),
    ...networks.map((n) => n.Name),
    ...(volumes.Volumes ?? []).map((v) => v.Name),
    ...containers.flatMap((c) => c.Names.map((n) => n.replace(/^\//, ''))),
    ...configs.map((c) => c.Spec?.Name ?? ''),
    ...secrets.map((s) => s.Spec?.Name ?? ''),
  ];
}

/**
 * Removes anything named after a corpus record. The controller copies no test-run label onto objects
 * made from corpus records, so ControllerLab's cleanup would miss them; only a regression makes any.
 */
async function removeTagged(tag: string, owner: string): Promise<void> {
  const ours = (name: string | undefined, labels: Record<string, string> | null | undefined): boolean =>
    (name ?? '').includes(tag) && labels?.[LABELS.owner] === owner;
  const quietly = (operation: Promise<unknown>): Promise<unknown> => operation.catch(() => undefined);
  for (const s of await testDocker.listServices())
    if (ours(s.Spec?.Name, s.Spec?.Labels)) await quietly(testDocker.getService(s.ID).remove());
  for (const c of await testDocker.listContainers({ all: true }))
    if (c.Names.some((n) => ours(n, c.Labels)))
      await quietly(testDocker.getContainer(c.Id).remove({ force: true }));
  for (const n of await testDocker.listNetworks())
    if (ours(n.Name, n.Labels)) await quietly(testDocker.getNetwork(n.Id).remove());
  for (const v of (await testDocker.listVolumes()).Volumes ?? [])
    if (ours(v.Name, v.Labels)) await quietly(testDocker.getVolume(v.Name).remove());
  for (const c of await testDocker.listConfigs())
    if (ours(c.Spec?.Name, c.Spec?.Labels)) await quietly(testDocker.getConfig(c.ID).remove());
  for (const c of await testDocker.listSecrets())
    if (ours(c.Spec?.Name, c.Spec?.Labels)) await quietly(testDocker.getSecret(c.ID).remove());
}

async function service(name: string) {
  const services = await testDocker.listServices({ filters: JSON.stringify({ name: [name] }) });
  return services.find((s) => s.Spec?.Name === name);
}

describe('the generated corpus', () => {
  it('holds at least 200 invalid records across every category, each with one key', () => {
    const corpus = generateCorpus({ prefix: 'sktest:corpus', tag: 'skcorpusq' });
    const counts = countByCategory(corpus);
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    expect(Object.keys(counts).sort()).toEqual([
      'docker-name',
      'invalid-json',
      'lookalike-kind',
      'malformed-key',
      'nested',
      'not-a-hash',
      'oversized',
      'quota',
      'reserved-field',
      'unknown-field',
      'username',
      'wrong-type',
    ]);
    expect(new Set(corpus.map((c) => c.key)).size).toBe(corpus.length);
    // Generating again gives the same corpus: a failure names a case that can be found again.
    expect(generateCorpus({ prefix: 'sktest:corpus', tag: 'skcorpusq' }).map((c) => c.id)).toEqual(
      corpus.map((c) => c.id),
    );
    expect(MAX_FIELD_BYTES).toBeLessThan(ONE_MIB);
  });
});

let lab: ControllerLab;
beforeEach(async () => {
  lab = new ControllerLab('bad-input');
  await lab.open();
});
afterEach(async () => {
  await lab.close();
});

describe('invalid records written with redis-cli', () => {
  it('read back through the store as Invalid naming the field, unchanged, while valid records still load', async () => {
    const corpus = generateCorpus({ prefix: lab.prefix, tag: `${lab.names}q` });
    const valid = [
      lab.resource('Network', lab.name('net'), { attachable: true }),
      lab.resource('Service', lab.name('web'), { ...SLEEPER, replicas: 2 }),
      lab.resource('User', lab.name('alice'), { quota: '1Gi' }),
    ];
    await lab.apply(...valid);
    await writeCorpus(lab, corpus);

    const records = await lab.store.list();
    const byKey = new Map(records.map((r) => [r.key, r]));
    expect(corpus.flatMap((c) => shortfalls(c, byKey.get(c.key)))).toEqual([]);
    expect(records.filter((r) => r.ok).map((r) => r.key)).toEqual(
      valid.map((r) => `${lab.prefix}:desired:${r.kind}:${r.metadata.name}`),
    );

    // A single read says the same as the listing.
    const singles = corpus.filter((c): c is CorpusCase & { statusKind: Kind } => c.statusKind !== undefined);
    const single = await Promise.all(singles.map((c) => lab.store.get(c.statusKind, c.name)));
    expect(singles.flatMap((c, i) => shortfalls(c, single[i]))).toEqual([]);

    // The store never rewrites or drops what a person wrote.
    const hashes = corpus.filter((c) => c.write.type === 'hash');
    const pipeline = lab.redis.pipeline();
    for (const c of hashes) pipeline.hgetall(c.key);
    const replies = (await pipeline.exec()) ?? [];
    const sorted = (hash: unknown): string =>
      JSON.stringify(Object.entries(hash as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : 1)));
    const rewritten = hashes.filter((c, i) => {
      const reply = replies[i]?.[1];
      return c.write.type === 'hash' && sorted(reply) !== sorted(c.write.fields);
    });
    expect(rewritten.map((c) => c.id)).toEqual([]);
  });
});

describe('a running controller fed the corpus', () => {
  it('marks each Invalid, makes no Docker write for any, leaves corrupted objects alone and still repairs', async () => {
    const tag = `${lab.names}q`;
    onTestFinished(async () => {
      await lab.stopAll();
      await removeTagged(tag, lab.prefix);
    });
    const corpus = generateCorpus({ prefix: lab.prefix, tag });
    const net = lab.name('net');
    const vol = lab.name('vol');
    const conf = lab.name('conf');
    const steady = lab.name('steady');
    const repair = lab.name('repair');
    const proxy = lab.name('proxy');
    const desiredKey = (kind: Kind, name: string): string => `${lab.prefix}:desired:${kind}:${name}`;
    await lab.apply(
      lab.resource('Network', net, { attachable: true }),
      lab.resource('Volume', vol, {}),
      lab.resource('Config', conf, { data: 'version one\n' }),
      lab.resource('Service', steady, { ...SLEEPER, replicas: 1, networks: [net] }),
      lab.resource('Service', repair, SLEEPER),
      lab.resource('Container', proxy, { image: 'local/busybox:1', command: ['sleep', '3600'] }),
    );
    const valid: [Kind, string][] = [
      ['Network', net],
      ['Volume', vol],
      ['Config', conf],
      ['Service', steady],
      ['Service', repair],
      ['Container', proxy],
    ];
    await lab.start();
    // Converged, with every task running: the engine's own events for starting tasks (the overlay
    // network appearing on the node, say) are over before the window opens.
    await eventually(async () => {
      const statuses = await lab.store.readStatuses(valid.map(([kind, name]) => ({ kind, name })));
      for (const [kind, name] of valid) expect(statuses.get(`${kind}/${name}`)?.sync).toBe('Synced');
      for (const name of [steady, repair]) expect(statuses.get(`Service/${name}`)?.health).toBe('Healthy');
    });

    const before = {
      steady: (await service(steady))?.Version?.Index,
      net: await docker('network', 'inspect', '-f', '{{.Id}}', net),
      proxy: await docker('inspect', '-f', '{{.Id}}', proxy),
      vol: await docker('volume', 'inspect', '-f', '{{.CreatedAt}}', vol),
      conf: (await testDocker.listConfigs()).find((c) => c.Spec?.Labels?.[LABELS.resource] === conf)?.ID,
    };
    expect(before.steady).toBeDefined();
    expect(before.conf).toBeDefined();
    const since = (Date.now() / 1000).toFixed(3);

    // The corpus, and bad edits to records whose objects are running.
    await writeCorpus(lab, corpus);
    await lab.redis.hset(desiredKey('Service', steady), 'replicas', 'two');
    await lab.redis.hset(desiredKey('Network', net), 'attachable', 'maybe');
    await lab.redis.hset(desiredKey('Container', proxy), 'ports', '[{"target": 80');
    await lab.redis.hset(desiredKey('Config', conf), 'data', 'x'.repeat(ONE_MIB));
    // Atomically, so the record is never missing: a key of the wrong type, not a deletion.
    await lab.redis.multi().del(desiredKey('Volume', vol)).set(desiredKey('Volume', vol), 'oops').exec();
    const corrupted: [Kind, string, string][] = [
      ['Service', steady, 'spec.replicas'],
      ['Network', net, 'spec.attachable'],
      ['Container', proxy, 'spec.ports'],
      ['Config', conf, 'spec.data'],
      ['Volume', vol, 'type'],
    ];
    // Meanwhile a valid service disappears out of band.
    await docker('service', 'rm', repair);

    const statusable = corpus.filter(
      (c): c is CorpusCase & { statusKind: Kind } => c.statusKind !== undefined,
    );
    await eventually(
      async () => {
        expect(await service(repair)).toBeDefined();
        const statuses = await lab.store.readStatuses([
          ...statusable.map((c) => ({ kind: c.statusKind, name: c.name })),
          ...corrupted.map(([kind, name]) => ({ kind, name })),
        ]);
        const wrong = [
          ...statusable.map(
            (c) => [c.id, statuses.get(`${c.statusKind}/${c.name}`), c.expectedPath] as const,
          ),
          ...corrupted.map(
            ([kind, name, path]) => [`${kind}/${name}`, statuses.get(`${kind}/${name}`), path] as const,
          ),
        ].filter(([, status, path]) => status?.sync !== 'Invalid' || !status.message?.includes(`${path}: `));
        expect(
          wrong.map(([id, status]) => `${id}: ${status?.sync} ${status?.message?.slice(0, 200)}`),
        ).toEqual([]);
      },
      { timeoutMs: 45_000, intervalMs: 500 },
    );
    // Two more full passes over everything, so any late write would have happened by now.
    const passes = lab.logsWith('full sync').length;
    await eventually(() => expect(lab.logsWith('full sync').length - passes).toBeGreaterThanOrEqual(2), {
      timeoutMs: 15_000,
    });
    const until = (Date.now() / 1000 + 0.5).toFixed(3);

    const events = (
      await docker(
        'events',
        '--since',
        since,
        '--until',
        until,
        '--format',
        '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}',
      )
    ).split('\n');
    // Zero Docker writes for any corpus record...
    expect(events.filter((line) => line.includes(tag))).toEqual([]);
    // ...or for the corrupted ones (their task containers included); the repaired service was created.
    const touched = (name: string): boolean =>
      events.some((line) => {
        const actor = line.split(' ').slice(2).join(' ');
        return actor === name || actor.startsWith(`${name}.`) || actor.startsWith(`${name}-`);
      });
    expect(corrupted.filter(([, name]) => touched(name)).map(([kind, name]) => `${kind}/${name}`)).toEqual(
      [],
    );
    expect(events).toContainEqual(`service create ${repair}`);

    // Nothing named after a corpus record exists; the corrupted objects are exactly as they were.
    expect((await dockerObjectNames()).filter((name) => name.includes(tag))).toEqual([]);
    const steadyNow = await service(steady);
    expect(steadyNow?.Version?.Index).toBe(before.steady);
    expect(steadyNow?.Spec?.Mode?.Replicated?.Replicas).toBe(1);
    expect(await docker('network', 'inspect', '-f', '{{.Id}} {{.Attachable}}', net)).toBe(
      `${before.net} true`,
    );
    expect(await docker('inspect', '-f', '{{.Id}} {{.State.Running}}', proxy)).toBe(`${before.proxy} true`);
    expect(await docker('volume', 'inspect', '-f', '{{.CreatedAt}}', vol)).toBe(before.vol);
    expect(
      (await testDocker.listConfigs())
        .filter((c) => c.Spec?.Labels?.[LABELS.resource] === conf)
        .map((c) => c.ID),
    ).toEqual([before.conf]);

    // Unknown kinds and malformed keys get no status at all, and no reconcile of a corpus key failed.
    const unstatused = corpus.filter((c) => c.statusKind === undefined);
    const statusKeys = await Promise.all(
      unstatused.map((c) => lab.redis.exists(`${lab.prefix}:status:${c.kind}:${c.name}`)),
    );
    expect(statusKeys.every((n) => n === 0)).toBe(true);
    expect(lab.logsWith('reconcile failed').filter((l) => JSON.stringify(l).includes(tag))).toEqual([]);

    // Fixing the field resumes the resource.
    await lab.redis.hset(desiredKey('Service', steady), 'replicas', '2');
    await eventually(async () => expect((await service(steady))?.Spec?.Mode?.Replicated?.Replicas).toBe(2));
  });
});

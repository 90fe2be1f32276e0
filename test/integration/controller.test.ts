/**
 * The reconcile engine against the real Swarm and Redis: each test starts a controller, breaks
 * the Swarm out of band, and waits for the repair.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NETWORK_RECREATE_FAULTS } from '../../src/actuate/index.js';
import { LABELS } from '../../src/resources/metadata.js';
import { toManifest } from '../../src/resources/resource.js';
import { runCli } from '../support/cli.js';
import { ControllerLab } from '../support/controller.js';
import { removeTestObjects, testDocker } from '../support/docker-cleanup.js';
import { eventually } from '../support/eventually.js';
import { TEST_RUN_LABEL, testRunId } from '../support/lab.js';

const run = promisify(execFile);
const docker = async (...args: string[]): Promise<string> => (await run('docker', args)).stdout.trim();

const SLEEPER = { image: 'local/busybox:1', command: ['sleep', '3600'], stopGracePeriod: '1s' };

async function serviceSpec(name: string) {
  const services = await testDocker.listServices({ filters: JSON.stringify({ name: [name] }) });
  return services.find((s) => s.Spec?.Name === name);
}

/** The ContainerSpec of a service's task template (dockerode types it as a union with plugins). */
function containerSpecOf(service: Awaited<ReturnType<typeof serviceSpec>>) {
  const template = service?.Spec?.TaskTemplate;
  return template && 'ContainerSpec' in template ? template.ContainerSpec : undefined;
}

/** Removes a network by hand and waits until Swarm has really let go of its name. */
async function removeNetwork(name: string): Promise<void> {
  await eventually(async () => {
    await docker('network', 'rm', name);
  });
  await eventually(async () => {
    await expect(docker('network', 'inspect', name)).rejects.toThrow();
  });
}

/**
 * What the seed guide did by hand: the network recreated without --attachable, with the service
 * detached and attached again. The labels make it look like this test's managed network.
 */
async function recreateWithoutAttachable(net: string, service: string): Promise<void> {
  await docker('service', 'update', '--detach', '--network-rm', net, service);
  await removeNetwork(net);
  await docker(
    'network',
    'create',
    '--driver',
    'overlay',
    '--label',
    `${TEST_RUN_LABEL}=${testRunId()}`,
    '--label',
    `${LABELS.managed}=true`,
    '--label',
    `${LABELS.owner}=${lab.prefix}`,
    net,
  );
  await docker('service', 'update', '--detach', '--network-add', net, service);
}

/** GET /networks/{name}?scope=swarm, which dockerode's types do not offer. */
async function inspectSwarmNetwork(name: string): Promise<{ Id: string; Attachable: boolean }> {
  const network = testDocker.getNetwork(name);
  const inspect = network.inspect.bind(network) as unknown as (opts: {
    scope: string;
  }) => Promise<{ Id: string; Attachable: boolean }>;
  return inspect({ scope: 'swarm' });
}

/** Applies an attachable managed network, starts the controller, and returns the network's ID once created. */
async function startWithAttachableNetwork(name: string): Promise<string> {
  await lab.apply(lab.resource('Network', name, { attachable: true }));
  await lab.start();
  await eventually(async () =>
    expect(await docker('network', 'inspect', '-f', '{{.Attachable}}', name)).toBe('true'),
  );
  return docker('network', 'inspect', '-f', '{{.Id}}', name);
}

async function runningTasks(name: string): Promise<number> {
  const tasks = (await testDocker.listTasks({
    filters: JSON.stringify({ service: [name], 'desired-state': ['running'] }),
  })) as { Status?: { State?: string } }[];
  return tasks.filter((t) => t.Status?.State === 'running').length;
}

let lab: ControllerLab;
beforeEach(async () => {
  lab = new ControllerLab('controller');
  await lab.open();
});
afterEach(async () => {
  await lab.close();
});

describe('the controller repairs drift', () => {
  it('restores a removed service, reverts scale, image and env changes', async () => {
    const name = lab.name('web');
    await lab.apply(lab.resource('Service', name, { ...SLEEPER, replicas: 1, env: { MODE: 'test' } }));
    await lab.start();
    await eventually(async () => expect(await serviceSpec(name)).toBeDefined());

    await docker('service', 'rm', name);
    await eventually(async () => expect(await serviceSpec(name)).toBeDefined());
    expect(lab.logsWith('drift detected', { kind: 'Service', name }).length).toBeGreaterThan(0);
    expect(lab.logsWith('created', { kind: 'Service', name }).length).toBeGreaterThanOrEqual(2);

    await docker('service', 'scale', '--detach', `${name}=3`);
    await eventually(async () => expect((await serviceSpec(name))?.Spec?.Mode?.Replicated?.Replicas).toBe(1));
    const scaled = lab.logsWith('drift detected', { kind: 'Service', name }).at(-1);
    expect(scaled?.drift).toEqual([{ path: 'spec.replicas', desired: 1, actual: 3 }]);

    await docker('service', 'update', '--detach', '--env-add', 'INTRUDER=1', name);
    await eventually(async () => {
      const env = containerSpecOf(await serviceSpec(name))?.Env ?? [];
      expect(env).toEqual(['MODE=test']);
    });

    await docker('service', 'update', '--detach', '--image', 'local/busybox:1-other', name);
    await eventually(async () =>
      expect(containerSpecOf(await serviceSpec(name))?.Image).toMatch(/^local\/busybox:1(@|$)/),
    );
  });

  it('recreates a network removed while unused', async () => {
    const name = lab.name('net');
    const firstId = await startWithAttachableNetwork(name);
    await docker('network', 'rm', name);
    await eventually(async () => {
      expect(await docker('network', 'inspect', '-f', '{{.Attachable}}', name)).toBe('true');
      expect(await docker('network', 'inspect', '-f', '{{.Id}}', name)).not.toBe(firstId);
    });
  });

  it('recreates a removed network at once, while the engine still lists the old one for a stopping task', async () => {
    const net = lab.name('busynet');
    const notebook = lab.name('jupyter-bob');
    const firstId = await startWithAttachableNetwork(net);
    // A notebook the hub spawned (not swarmkeeper's) whose process ignores SIGTERM: its task
    // takes the whole stop grace period to leave the network.
    await docker(
      'service',
      'create',
      '--detach',
      '--name',
      notebook,
      '--label',
      `${TEST_RUN_LABEL}=${testRunId()}`,
      '--network',
      net,
      '--stop-grace-period',
      '30s',
      'local/busybox:1',
      'sleep',
      '3600',
    );
    await eventually(async () => expect(await runningTasks(notebook)).toBe(1));

    await docker('service', 'update', '--detach', '--network-rm', net, notebook);
    await eventually(async () => {
      await docker('network', 'rm', firstId);
    });
    const removedAt = Date.now();
    await eventually(
      async () => {
        // The Swarm's network of that name, not the engine's local copy of the old one.
        const current = await inspectSwarmNetwork(net);
        expect(current.Id).not.toBe(firstId);
        expect(current.Attachable).toBe(true);
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const repairMs = Date.now() - removedAt;
    // The old copy is still listed (its task is still stopping): the repair did not wait for it.
    const listed = await docker('network', 'ls', '--no-trunc', '-q', '--filter', `name=${net}`);
    expect(listed.split('\n')).toContain(firstId);
    expect(repairMs).toBeLessThan(10_000);
    expect(lab.logsWith('created', { kind: 'Network', name: net }).length).toBeGreaterThanOrEqual(2);
  });

  it('brings back attachable on a network recreated by hand, keeping a managed and an unmanaged service attached', async () => {
    const net = lab.name('hubnet');
    const hub = lab.name('hub');
    const user = lab.name('jupyter-alice');
    await lab.apply(
      lab.resource('Network', net, { attachable: true }),
      lab.resource('Service', hub, { ...SLEEPER, networks: [net] }),
    );
    await lab.start();
    await eventually(async () => expect(await runningTasks(hub)).toBe(1));

    // Out of band: someone recreates the network without --attachable (as the seed guide first did).
    await lab.stopAll();
    await recreateWithoutAttachable(net, hub);
    // A notebook service the hub spawned: not swarmkeeper's, with an alias.
    await docker(
      'service',
      'create',
      '--detach',
      '--name',
      user,
      '--label',
      `${TEST_RUN_LABEL}=${testRunId()}`,
      '--network',
      `name=${net},alias=alice`,
      '--stop-grace-period',
      '1s',
      'local/busybox:1',
      'sleep',
      '3600',
    );
    expect(await docker('network', 'inspect', '-f', '{{.Attachable}}', net)).toBe('false');

    await lab.start();
    await eventually(
      async () => {
        expect(await docker('network', 'inspect', '-f', '{{.Attachable}}', net)).toBe('true');
        const netId = await docker('network', 'inspect', '-f', '{{.Id}}', net);
        for (const service of [hub, user]) {
          const targets =
            (await serviceSpec(service))?.Spec?.TaskTemplate?.Networks?.map((n) => n.Target) ?? [];
          expect(targets).toContain(netId);
          expect(await runningTasks(service)).toBe(1);
        }
        const aliases = (await serviceSpec(user))?.Spec?.TaskTemplate?.Networks?.[0]?.Aliases;
        expect(aliases).toEqual(['alice']);
      },
      { timeoutMs: 60_000 },
    );
    expect(lab.logsWith('network recreate step').some((l) => l.target === user && l.managed === false)).toBe(
      true,
    );
  });

  it('completes a network recreate interrupted midway after a controller restart', async () => {
    const net = lab.name('crashnet');
    const hub = lab.name('hub');
    await lab.apply(
      lab.resource('Network', net, { attachable: true }),
      lab.resource('Service', hub, { ...SLEEPER, networks: [net] }),
    );
    await lab.start();
    await eventually(async () => expect(await runningTasks(hub)).toBe(1));
    await lab.stopAll();

    // Make the network lose attachable out of band.
    await recreateWithoutAttachable(net, hub);

    let crashed = false;
    await lab.start({
      faultInjector: (step) => {
        if (step === NETWORK_RECREATE_FAULTS.afterRemove || crashed) {
          crashed = true;
          throw new Error(`injected crash at ${step}`);
        }
      },
    });
    await eventually(() => expect(crashed).toBe(true));
    await lab.stopAll();
    // Every step after the crash point failed too, so the recreate is unfinished and journalled.
    const journalKey = `${lab.prefix}:journal:Network:${net}`;
    expect(await lab.redis.exists(journalKey)).toBe(1);

    await lab.start();
    await eventually(
      async () => {
        expect(await docker('network', 'inspect', '-f', '{{.Attachable}}', net)).toBe('true');
        const netId = await docker('network', 'inspect', '-f', '{{.Id}}', net);
        const targets = (await serviceSpec(hub))?.Spec?.TaskTemplate?.Networks?.map((n) => n.Target) ?? [];
        expect(targets).toEqual([netId]);
        expect(await runningTasks(hub)).toBe(1);
        expect(await lab.redis.exists(journalKey)).toBe(0);
      },
      { timeoutMs: 60_000 },
    );
  });

  it('moves a service to new config content and removes the old config', async () => {
    const config = lab.name('conf');
    const web = lab.name('web');
    await lab.apply(
      lab.resource('Config', config, { data: 'version one\n' }),
      lab.resource('Service', web, { ...SLEEPER, configs: [{ source: config, target: '/etc/app.conf' }] }),
    );
    await lab.start();
    const mounted = async (): Promise<string[]> =>
      (containerSpecOf(await serviceSpec(web))?.Configs ?? []).map((c) => c.ConfigName ?? '');
    await eventually(async () => expect(await mounted()).toHaveLength(1));
    const [before] = await mounted();

    await lab.redis.hset(`${lab.prefix}:desired:Config:${config}`, 'data', 'version two\n');
    await eventually(async () => {
      const [after] = await mounted();
      expect(after).toMatch(new RegExp(`^${config}-[0-9a-f]{8}$`));
      expect(after).not.toBe(before);
      const names = (await testDocker.listConfigs()).map((c) => c.Spec?.Name);
      expect(names).toContain(after);
      expect(names).not.toContain(before);
    });
  });

  it('starts a stopped container and recreates a removed one', async () => {
    const name = lab.name('proxy');
    await lab.apply(
      lab.resource('Container', name, { image: 'local/busybox:1', command: ['sleep', '3600'] }),
    );
    await lab.start();
    const state = async (): Promise<string> => docker('inspect', '-f', '{{.State.Status}}', name);
    await eventually(async () => expect(await state()).toBe('running'));
    await docker('stop', '-t', '0', name);
    await eventually(async () => expect(await state()).toBe('running'));
    await docker('rm', '-f', name);
    await eventually(async () => expect(await state()).toBe('running'));
  });
});

describe('the controller stays safe', () => {
  it('leaves an unmanaged service with a desired name alone and reports a Conflict', async () => {
    const name = lab.name('foreign');
    await docker(
      'service',
      'create',
      '--detach',
      '--name',
      name,
      '--label',
      `${TEST_RUN_LABEL}=${testRunId()}`,
      '--replicas',
      '2',
      'local/busybox:1',
      'sleep',
      '3600',
    );
    const before = (await serviceSpec(name))?.Version?.Index;
    await lab.apply(lab.resource('Service', name, { ...SLEEPER, replicas: 1 }));
    await lab.start();
    await eventually(async () =>
      expect((await lab.store.readStatus('Service', name))?.sync).toBe('Conflict'),
    );
    const after = await serviceSpec(name);
    expect(after?.Version?.Index).toBe(before);
    expect(after?.Spec?.Mode?.Replicated?.Replicas).toBe(2);
  });

  it('removes nothing when the desired store is flushed, and holds a guard until prune --confirm', async () => {
    const a = lab.name('a');
    const b = lab.name('b');
    await lab.apply(lab.resource('Service', a, SLEEPER), lab.resource('Network', b, {}));
    await lab.start();
    await eventually(async () => {
      expect(await serviceSpec(a)).toBeDefined();
      expect(await docker('network', 'inspect', '-f', '{{.Name}}', b)).toBe(b);
    });
    await lab.redis.del(`${lab.prefix}:desired:Service:${a}`, `${lab.prefix}:desired:Network:${b}`);
    await eventually(async () => expect((await lab.store.readGuard())?.state).toBe('held'), {
      timeoutMs: 15_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(await serviceSpec(a)).toBeDefined();
    expect(await docker('network', 'inspect', '-f', '{{.Name}}', b)).toBe(b);
    expect(lab.logsWith('removal held by the prune guard')).toHaveLength(1);

    await lab.store.writeGuard({ ...(await lab.store.readGuard())!, state: 'confirmed' });
    await eventually(async () => expect(await serviceSpec(a)).toBeUndefined(), { timeoutMs: 20_000 });
  });

  it('marks a record broken by raw HSET Invalid, naming the field, and keeps repairing the others', async () => {
    const broken = lab.name('broken');
    const healthy = lab.name('healthy');
    await lab.apply(lab.resource('Service', broken, SLEEPER), lab.resource('Service', healthy, SLEEPER));
    await lab.start();
    await eventually(async () => expect(await serviceSpec(healthy)).toBeDefined());
    await eventually(async () => expect(await serviceSpec(broken)).toBeDefined());

    await lab.redis.hset(`${lab.prefix}:desired:Service:${broken}`, 'replicas', 'two');
    await eventually(async () => {
      const status = await lab.store.readStatus('Service', broken);
      expect(status?.sync).toBe('Invalid');
      expect(status?.message).toContain('spec.replicas');
    });
    const versionBefore = (await serviceSpec(broken))?.Version?.Index;
    await docker('service', 'rm', healthy);
    await eventually(async () => expect(await serviceSpec(healthy)).toBeDefined());
    expect((await serviceSpec(broken))?.Version?.Index).toBe(versionBefore);

    await lab.redis.hset(`${lab.prefix}:desired:Service:${broken}`, 'replicas', '2');
    await eventually(async () =>
      expect((await serviceSpec(broken))?.Spec?.Mode?.Replicated?.Replicas).toBe(2),
    );
  });

  it('makes no Docker writes across three resyncs once converged', async () => {
    const net = lab.name('quiet');
    const web = lab.name('web');
    const conf = lab.name('conf');
    await lab.apply(
      lab.resource('Network', net, { attachable: true }),
      lab.resource('Config', conf, { data: 'x' }),
      lab.resource('Service', web, {
        ...SLEEPER,
        networks: [net],
        configs: [{ source: conf }],
        env: { B: '2', A: '1' },
        resources: { limits: { memory: '64M', cpus: '0.5' } },
        restartPolicy: { condition: 'any', delay: '1s' },
        healthcheck: { test: ['CMD', 'true'], interval: '5s' },
      }),
    );
    await lab.start();
    await eventually(
      async () => expect((await lab.store.readStatus('Service', web))?.health).toBe('Healthy'),
      {
        timeoutMs: 30_000,
      },
    );
    const since = Math.floor(Date.now() / 1000);
    const passesBefore = lab.logsWith('full sync').length;
    await eventually(
      () => expect(lab.logsWith('full sync').length - passesBefore).toBeGreaterThanOrEqual(3),
      {
        timeoutMs: 10_000,
      },
    );
    const until = Math.ceil(Date.now() / 1000);
    const events = await docker(
      'events',
      '--since',
      String(since),
      '--until',
      String(until),
      '--format',
      '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}',
    );
    const writes = events
      .split('\n')
      .filter((line) => line.includes(lab.names))
      .filter((line) => /^(service|network|config) (create|update|remove|destroy)/.test(line));
    expect(writes).toEqual([]);
  });
});

describe('status and diff', () => {
  it('status shows sync and health; diff exits 0 when live matches and 1 naming the field when it drifts', async () => {
    const name = lab.name('diffed');
    const resource = lab.resource('Service', name, { ...SLEEPER, replicas: 1 });
    await lab.apply(resource);
    await lab.start();
    await eventually(async () =>
      expect((await lab.store.readStatus('Service', name))?.health).toBe('Healthy'),
    );
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', SWARMKEEPER_PREFIX: lab.prefix };

    const status = await runCli(['status'], env);
    expect(status.stdout).toMatch(new RegExp(`Service\\s+${name}\\s+Synced\\s+Healthy`));
    const json = JSON.parse((await runCli(['status', '-o', 'json'], env)).stdout) as {
      resources: { name: string; sync: string }[];
    };
    expect(json.resources).toContainEqual(expect.objectContaining({ name, sync: 'Synced' }));

    const dir = await mkdtemp(path.join(tmpdir(), 'sk-diff-'));
    try {
      const file = path.join(dir, 'svc.yaml');
      await writeFile(file, JSON.stringify(toManifest(resource)));
      const same = await runCli(['diff', '-f', file], env);
      expect(same.code).toBe(0);

      await lab.stopAll();
      await docker('service', 'scale', '--detach', `${name}=2`);
      const drifted = await runCli(['diff', '-f', file], env);
      expect(drifted.code).toBe(1);
      expect(drifted.stdout).toContain(`Service/${name}:`);
      expect(drifted.stdout).toContain('spec.replicas: 2 → 1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('volumes', () => {
  it('recreates an unused bind volume whose options drifted, and reports one in use as OutOfSync', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sk-vol-'));
    try {
      const name = lab.name('homes');
      const opts = (device: string) => ({ driverOpts: { type: 'none', o: 'bind', device } });
      await lab.apply(lab.resource('Volume', name, opts(`${dir}/a`)));
      await lab.start();
      const device = async (): Promise<string> =>
        docker('volume', 'inspect', '-f', '{{.Options.device}}', name);
      await eventually(async () => expect(await device()).toBe(`${dir}/a`));

      await lab.apply(lab.resource('Volume', name, opts(`${dir}/b`)));
      await eventually(async () => expect(await device()).toBe(`${dir}/b`));

      await run('mkdir', ['-p', `${dir}/b`]);
      const user = lab.name('user');
      await docker(
        'run',
        '-d',
        '--name',
        user,
        '--label',
        `${TEST_RUN_LABEL}=${testRunId()}`,
        '-v',
        `${name}:/data`,
        'local/busybox:1',
        'sleep',
        '3600',
      );
      await lab.apply(lab.resource('Volume', name, opts(`${dir}/c`)));
      await eventually(async () => {
        const status = await lab.store.readStatus('Volume', name);
        expect(status?.sync).toBe('OutOfSync');
        expect(status?.message).toContain('in use');
      });
      expect(await device()).toBe(`${dir}/b`);
    } finally {
      await lab.stopAll();
      await removeTestObjects(lab.names);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('never recreates a plain local volume, whose data lives inside it', async () => {
    const name = lab.name('data');
    await lab.apply(lab.resource('Volume', name, {}));
    await lab.start();
    await eventually(async () =>
      expect(await docker('volume', 'inspect', '-f', '{{.Name}}', name)).toBe(name),
    );
    const created = await docker('volume', 'inspect', '-f', '{{.CreatedAt}}', name);
    await lab.apply(lab.resource('Volume', name, { driverOpts: { type: 'tmpfs', device: 'tmpfs' } }));
    await eventually(async () => {
      const status = await lab.store.readStatus('Volume', name);
      expect(status?.sync).toBe('OutOfSync');
      expect(status?.message).toContain('delete its data');
    });
    expect(await docker('volume', 'inspect', '-f', '{{.CreatedAt}}', name)).toBe(created);
  });
});

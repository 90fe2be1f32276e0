/**
 * DockerObservedReader against the real lab engine: every object here is created by this file,
 * carries the run label and a unique name prefix, and is removed in afterAll by that label and prefix.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createDocker, pingDocker, resolveDockerEndpoint } from '../../src/observed/docker-client.js';
import { DockerObservedReader, type ObservedService } from '../../src/observed/reader.js';
import { TEST_RUN_LABEL, testRunId } from '../support/lab.js';

const docker = createDocker();
const prefix = `skobs-${randomBytes(3).toString('hex')}`;
const labels = (): Record<string, string> => ({ [TEST_RUN_LABEL]: testRunId() });
const labelFilter = (): string[] => [`${TEST_RUN_LABEL}=${testRunId()}`];
const mine = (name: string | undefined): boolean => name?.replace(/^\//, '').startsWith(prefix) === true;

const names = {
  service: `${prefix}-svc`,
  network: `${prefix}-net`,
  volume: `${prefix}-vol`,
  idleVolume: `${prefix}-idle`,
  config: `${prefix}-cfg`,
  secret: `${prefix}-sec`,
  container: `${prefix}-ctr`,
};
const SECRET_TEXT = 'do-not-print-me';

async function eventually<T>(read: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function removeMine(): Promise<void> {
  const filters = { label: labelFilter() };
  for (const s of await docker.listServices({ filters })) {
    if (mine(s.Spec?.Name)) await docker.getService(s.ID).remove();
  }
  for (const c of await docker.listContainers({ all: true, filters })) {
    if (c.Names.some(mine)) await docker.getContainer(c.Id).remove({ force: true, v: false });
  }
  // A network can go only once the tasks on it have shut down, and a volume once nothing mounts it.
  await eventually(async () => {
    const left = await docker.listContainers({ all: true, filters: { name: [prefix] } });
    return left.length === 0 ? true : undefined;
  });
  for (const n of await docker.listNetworks({ filters })) {
    if (mine(n.Name))
      await eventually(() =>
        docker
          .getNetwork(n.Id)
          .remove()
          .then(
            () => true,
            () => undefined,
          ),
      );
  }
  const { Volumes } = await docker.listVolumes({ filters });
  for (const v of (Volumes as typeof Volumes | null) ?? []) {
    if (mine(v.Name)) await docker.getVolume(v.Name).remove();
  }
  for (const c of await docker.listConfigs({ filters })) {
    if (mine(c.Spec?.Name)) await docker.getConfig(c.ID).remove();
  }
  for (const s of await docker.listSecrets({ filters })) {
    if (mine(s.Spec?.Name)) await docker.getSecret(s.ID).remove();
  }
}

beforeAll(async () => {
  await docker.createNetwork({ Name: names.network, Driver: 'overlay', Attachable: true, Labels: labels() });
  await docker.createVolume({ Name: names.volume, Labels: labels() });
  await docker.createVolume({ Name: names.idleVolume, Labels: labels() });
  await docker.createConfig({
    Name: names.config,
    Labels: labels(),
    Data: Buffer.from('a=1\n').toString('base64'),
  });
  await docker.createSecret({
    Name: names.secret,
    Labels: labels(),
    Data: Buffer.from(SECRET_TEXT).toString('base64'),
  });
  await docker.createService({
    Name: names.service,
    Labels: { ...labels(), 'io.swarmkeeper.managed': 'true' },
    TaskTemplate: {
      ContainerSpec: {
        Image: 'local/busybox:1',
        Args: ['sleep', '3600'],
        Labels: labels(),
        // busybox sleep as PID 1 ignores SIGTERM: do not wait the default 10 s on removal.
        StopGracePeriod: 1_000_000_000,
      },
      Networks: [{ Target: names.network }],
    },
    Mode: { Replicated: { Replicas: 1 } },
  });
  const container = await docker.createContainer({
    name: names.container,
    Image: 'local/busybox:1',
    Cmd: ['sleep', '3600'],
    Labels: labels(),
    HostConfig: {
      Mounts: [{ Type: 'volume', Source: names.volume, Target: '/data' }],
      NetworkMode: names.network,
    },
  });
  await container.start();
});

afterAll(async () => {
  await removeMine();
});

describe('createDocker and pingDocker', () => {
  it('reports the engine version and an active Swarm manager', async () => {
    const status = await pingDocker(docker);
    expect(status.engineVersion).toMatch(/^\d+\.\d+/);
    expect(status.apiVersion).toMatch(/^1\.\d+$/);
    expect(status.swarm.localNodeState).toBe('active');
    expect(status.swarm.controlAvailable).toBe(true);
    expect(status.swarm.nodeId).not.toBe('');
  });

  it('honours DOCKER_HOST for unix:// and loopback tcp://, and refuses anything else', () => {
    expect(resolveDockerEndpoint({}, {})).toEqual({ kind: 'unix', socketPath: '/var/run/docker.sock' });
    expect(resolveDockerEndpoint({}, { DOCKER_HOST: 'unix:///run/d.sock' })).toEqual({
      kind: 'unix',
      socketPath: '/run/d.sock',
    });
    expect(resolveDockerEndpoint({}, { DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toEqual({
      kind: 'tcp',
      host: '127.0.0.1',
      port: 2375,
    });
    expect(resolveDockerEndpoint({ socketPath: '/x.sock' }, { DOCKER_HOST: 'tcp://localhost:1' })).toEqual({
      kind: 'unix',
      socketPath: '/x.sock',
    });
    expect(() => resolveDockerEndpoint({}, { DOCKER_HOST: 'tcp://10.1.2.3:2375' })).toThrow(ConfigError);
    expect(() => resolveDockerEndpoint({}, { DOCKER_HOST: 'ssh://me@localhost' })).toThrow(ConfigError);
  });

  it('connects through an explicit unix:// host', async () => {
    const status = await pingDocker(createDocker({ host: 'unix:///var/run/docker.sock' }));
    expect(status.swarm.localNodeState).toBe('active');
  });
});

describe('DockerObservedReader.snapshot', () => {
  const reader = new DockerObservedReader(docker);

  it('sees a service with its spec, version and running task', async () => {
    const service = await eventually(async () => {
      const s = (await reader.snapshot()).services.get(names.service);
      return s?.tasks.some((t) => t.state === 'running' && t.desiredState === 'running') ? s : undefined;
    });
    expect(service.spec.Name).toBe(names.service);
    const template = service.spec.TaskTemplate;
    expect(template && 'ContainerSpec' in template ? template.ContainerSpec?.Args : undefined).toEqual([
      'sleep',
      '3600',
    ]);
    expect(service.version).toBeGreaterThan(0);
    expect(service.labels['io.swarmkeeper.managed']).toBe('true');
    expect(service.inspect.ID).toBe(service.id);
    const task = service.tasks.find((t) => t.state === 'running');
    expect(task).toMatchObject({ serviceId: service.id, slot: 1, desiredState: 'running' });
    expect(task?.containerId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('sees an attachable overlay network, volumes with their users, a config, a secret without data, a container', async () => {
    const snap = await reader.snapshot();

    expect(snap.networks.get(names.network)).toMatchObject({
      Driver: 'overlay',
      Attachable: true,
      Scope: 'swarm',
    });

    const used = snap.volumes.get(names.volume);
    expect(used?.usedBy.map((u) => u.containerName)).toContain(names.container);
    expect(used?.usedBy.find((u) => u.containerName === names.container)?.state).toBe('running');
    expect(snap.volumes.get(names.idleVolume)?.usedBy).toEqual([]);

    const config = snap.configs.get(names.config);
    expect(config?.Spec?.Labels[TEST_RUN_LABEL]).toBe(testRunId());
    expect(config?.Version.Index).toBeGreaterThan(0);

    const secret = snap.secrets.get(names.secret);
    expect(secret?.Spec?.Labels?.[TEST_RUN_LABEL]).toBe(testRunId());
    expect(secret?.Spec).not.toHaveProperty('Data');
    expect(JSON.stringify(secret)).not.toContain(Buffer.from(SECRET_TEXT).toString('base64'));

    const container = snap.containers.get(names.container);
    expect(container?.State).toBe('running');
    expect(container?.Labels[TEST_RUN_LABEL]).toBe(testRunId());
  });

  it('costs the same few API calls however many objects exist', async () => {
    reader.counter.reset();
    await reader.snapshot();
    const before = reader.counter.total();
    expect(before).toBeLessThanOrEqual(10);
    expect(reader.counter.byMethod()).toMatchObject({ listServices: 1, listTasks: 1, listContainers: 1 });

    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        docker.createConfig({
          Name: `${prefix}-bulk-${i}`,
          Labels: labels(),
          Data: Buffer.from(String(i)).toString('base64'),
        }),
      ),
    );
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        docker.createVolume({ Name: `${prefix}-bulk-${i}`, Labels: labels() }),
      ),
    );

    reader.counter.reset();
    const snap = await reader.snapshot();
    expect([...snap.configs.keys()].filter((n) => n.startsWith(`${prefix}-bulk-`))).toHaveLength(12);
    expect(reader.counter.total()).toBe(before);
  });
});

describe('DockerObservedReader single-object reads', () => {
  const reader = new DockerObservedReader(docker);

  it('re-reads one service with its current version and tasks', async () => {
    const fromSnapshot = (await reader.snapshot()).services.get(names.service);
    const service: ObservedService | undefined = await reader.inspectService(names.service);
    expect(service?.id).toBe(fromSnapshot?.id);
    expect(service?.version).toBe(fromSnapshot?.version);
    expect(service?.tasks.length).toBeGreaterThan(0);
    expect(service?.tasks.every((t) => t.serviceId === service.id)).toBe(true);
    expect(await reader.inspectService(`${prefix}-missing`)).toBeUndefined();
  });

  it('inspects a network with the containers and services attached to it', async () => {
    const network = await eventually(async () => {
      const n = await reader.inspectNetwork(names.network);
      return n?.attachedServices.includes(names.service) ? n : undefined;
    });
    expect(network.attachedContainers.map((c) => c.name)).toContain(names.container);
    expect(network.attachedContainers.some((c) => c.name.startsWith(`${names.service}.1.`))).toBe(true);
    expect(network.attachedContainers.every((c) => !c.id.startsWith('lb-'))).toBe(true);
    expect(await reader.inspectNetwork(`${prefix}-missing`)).toBeUndefined();
  });

  it('inspects a volume, a config, a secret and a container, or says they are missing', async () => {
    expect((await reader.inspectVolume(names.volume))?.usedBy.map((u) => u.containerName)).toEqual([
      names.container,
    ]);
    expect((await reader.inspectVolume(names.idleVolume))?.usedBy).toEqual([]);
    expect((await reader.inspectConfig(names.config))?.Spec?.Name).toBe(names.config);
    const secret = await reader.inspectSecret(names.secret);
    expect(secret?.Spec?.Name).toBe(names.secret);
    expect(secret?.Spec).not.toHaveProperty('Data');
    expect((await reader.inspectContainer(names.container))?.Name).toBe(`/${names.container}`);

    expect(await reader.inspectVolume(`${prefix}-missing`)).toBeUndefined();
    expect(await reader.inspectConfig(`${prefix}-missing`)).toBeUndefined();
    expect(await reader.inspectSecret(`${prefix}-missing`)).toBeUndefined();
    expect(await reader.inspectContainer(`${prefix}-missing`)).toBeUndefined();
  });

  it('lists the Swarm nodes in one call', async () => {
    reader.counter.reset();
    const nodes = await reader.nodes();
    expect(reader.counter.byMethod()).toEqual({ listNodes: 1 });
    const leader = nodes.find((n) => n.leader);
    expect(leader).toMatchObject({ role: 'manager', state: 'ready', availability: 'active' });
    expect(leader?.hostname).not.toBe('');
  });
});

/**
 * DockerActuator against the real lab engine and Redis. Bodies come from the real translation
 * (src/reconcile) of resources validated here; every Docker object carries the run label and this
 * file's name prefix, and is removed in afterAll by both.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerTaskSpec, Service } from 'dockerode';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DockerActuator,
  isExecutable,
  type ActionReport,
  type ExecutableAction,
} from '../../src/actuate/index.js';
import { toDockerError } from '../../src/actuate/docker-errors.js';
import { RedisNetworkRecreateJournal } from '../../src/desired/journal.js';
import { KeySpace } from '../../src/desired/keys.js';
import { DockerRequestError, NotOwnedError } from '../../src/errors.js';
import { createDocker } from '../../src/observed/docker-client.js';
import {
  emptyContext,
  planConfig,
  planContainer,
  planNetwork,
  planSecret,
  planService,
  planVolume,
  type Action,
  type ReconcileContext,
} from '../../src/reconcile/index.js';
import { LABELS } from '../../src/resources/metadata.js';
import { validateResource, type Resource, type ResourceOf } from '../../src/resources/resource.js';
import { dropPrefix, rawRedis, TEST_RUN_LABEL, testRunId, uniquePrefix } from '../support/lab.js';

const docker = createDocker();
const prefix = `skact-${randomBytes(3).toString('hex')}`;
const owner = uniquePrefix('actuate');
const IMAGE = 'local/busybox:1';
let redis: Redis;
let actuator: DockerActuator;

const runLabels = (): Record<string, string> => ({ [TEST_RUN_LABEL]: testRunId() });
const mine = (name: string | undefined): boolean => name?.replace(/^\//, '').startsWith(prefix) === true;

function resource<K extends Resource['kind']>(
  kind: K,
  name: string,
  spec: unknown,
  labels: Record<string, string> = {},
) {
  const result = validateResource({
    apiVersion: 'swarmkeeper/v1',
    kind,
    metadata: { name, labels: { ...labels, ...runLabels() } },
    spec,
  });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.resource as ResourceOf<K>;
}

function only(actions: readonly Action[], type: Action['type']): ExecutableAction {
  const action = actions.find((a) => a.type === type);
  if (action === undefined || !isExecutable(action)) {
    throw new Error(`expected a ${type} action, got ${JSON.stringify(actions)}`);
  }
  return action;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error: unknown) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function eventually<T>(read: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** dockerode types a service inspect as `any`. */
async function inspectService(name: string): Promise<Service> {
  return (await docker.getService(name).inspect()) as Service;
}

function taskTemplate(service: Service): ContainerTaskSpec {
  return service.Spec?.TaskTemplate ?? {};
}

async function networkIds(): Promise<Map<string, string>> {
  return new Map((await docker.listNetworks()).map((n) => [n.Name, n.Id]));
}

async function context(): Promise<ReconcileContext> {
  return { ...emptyContext(), networks: await networkIds() };
}

async function removeMine(): Promise<void> {
  const filters = { label: [`${TEST_RUN_LABEL}=${testRunId()}`] };
  for (const s of await docker.listServices({ filters })) {
    if (mine(s.Spec?.Name)) await docker.getService(s.ID).remove();
  }
  for (const c of await docker.listContainers({ all: true, filters })) {
    if (c.Names.some(mine)) await docker.getContainer(c.Id).remove({ force: true, v: false });
  }
  await eventually(async () => {
    const left = await docker.listContainers({ all: true, filters: { name: [prefix] } });
    return left.length === 0 ? true : undefined;
  });
  for (const n of await docker.listNetworks({ filters })) {
    if (mine(n.Name)) {
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
  }
  const { Volumes } = await docker.listVolumes({ filters });
  for (const v of (Volumes as typeof Volumes | null) ?? []) {
    if (mine(v.Name)) await docker.getVolume(v.Name).remove();
  }
  for (const c of await docker.listConfigs({ filters })) {
    if (mine(c.Spec?.Name)) await docker.getConfig(c.ID).remove();
  }
  for (const c of await docker.listSecrets({ filters })) {
    if (mine(c.Spec?.Name)) await docker.getSecret(c.ID).remove();
  }
}

function code(error: unknown): string | undefined {
  return error instanceof DockerRequestError || error instanceof NotOwnedError ? error.code : undefined;
}

beforeAll(() => {
  redis = rawRedis();
  const keys = new KeySpace(owner);
  actuator = new DockerActuator({
    docker,
    owner,
    journal: new RedisNetworkRecreateJournal({ redis, keys }),
    containerStopTimeoutSeconds: 1,
  });
});

afterAll(async () => {
  await removeMine();
  await dropPrefix(redis, owner);
  redis.disconnect();
});

describe('DockerActuator', () => {
  it('creates, updates and recreates a service, labelling only the ServiceSpec', async () => {
    const name = `${prefix}-svc`;
    const spec = {
      image: IMAGE,
      command: ['sleep', '3600'],
      stopGracePeriod: '1s',
      containerLabels: { role: 'x' },
    };
    const desired = resource('Service', name, spec);
    const created = await actuator.execute(only(planService(desired, undefined, await context()), 'create'));
    expect(created).toMatchObject({ verb: 'created', kind: 'Service', name });
    const first = await inspectService(name);
    expect(first.ID).toBe(created.id);
    expect(first.Spec?.Labels).toMatchObject({ [LABELS.managed]: 'true', [LABELS.owner]: owner });
    expect(taskTemplate(first).ContainerSpec?.Labels).toEqual({ role: 'x' });

    const scaled = resource('Service', name, { ...spec, replicas: 2 });
    const update = only(planService(scaled, first, await context()), 'update');
    const updated = await actuator.execute(update);
    expect(updated).toMatchObject({ verb: 'updated', name, id: first.ID, detail: { labelsOnly: false } });
    const second = await inspectService(name);
    expect(second.Spec?.Mode).toEqual({ Replicated: { Replicas: 2 } });
    expect(second.Spec?.Labels?.[LABELS.owner]).toBe(owner);

    // The same action again carries the version read before the first update.
    const stale = await failure(actuator.execute(update));
    expect(code(stale)).toBe('SK_DOCKER_OUT_OF_SEQUENCE');
    expect((stale as DockerRequestError).retryable).toBe(true);

    const global = resource('Service', name, { ...spec, mode: 'global' });
    const recreate = only(planService(global, second, await context()), 'recreate');
    const recreated = await actuator.execute(recreate);
    expect(recreated).toMatchObject({ verb: 'recreated', name, detail: { oldId: first.ID } });
    expect(recreated.id).not.toBe(first.ID);
    const third = await inspectService(name);
    expect(third.ID).toBe(recreated.id);
    expect(third.Spec?.Mode).toEqual({ Global: {} });
    expect(third.Spec?.Labels?.[LABELS.owner]).toBe(owner);
  });

  it('creates a network with the owner label, and reports a second create as a conflict', async () => {
    const name = `${prefix}-net`;
    const action = only(planNetwork(resource('Network', name, { attachable: true }), undefined), 'create');
    const report = await actuator.execute(action);
    expect(report).toMatchObject({ verb: 'created', kind: 'Network', name });
    const network = await docker.getNetwork(name).inspect();
    expect(network.Id).toBe(report.id);
    expect(network.Attachable).toBe(true);
    expect(network.Labels).toMatchObject({ [LABELS.managed]: 'true', [LABELS.owner]: owner });
    expect(code(await failure(actuator.execute(action)))).toBe('SK_DOCKER_CONFLICT');
  });

  it('creates a volume, and refuses to recreate it while a container uses it', async () => {
    const name = `${prefix}-vol`;
    const tmpfs = { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' };
    const created = await actuator.execute(
      only(planVolume(resource('Volume', name, { driverOpts: tmpfs }), undefined), 'create'),
    );
    expect(created).toMatchObject({ verb: 'created', kind: 'Volume', name });
    const before = await docker.getVolume(name).inspect();
    expect(before.Labels).toMatchObject({ [LABELS.owner]: owner });

    const user = await docker.createContainer({
      name: `${prefix}-voluser`,
      Image: IMAGE,
      Cmd: ['sleep', '3600'],
      Labels: runLabels(),
      HostConfig: { Mounts: [{ Type: 'volume', Source: name, Target: '/data' }] },
    });
    const resized = resource('Volume', name, { driverOpts: { ...tmpfs, o: 'size=2m' } });
    const recreate = only(planVolume(resized, before), 'recreate');
    const refused = await failure(actuator.execute(recreate));
    expect(code(refused)).toBe('SK_DOCKER_IN_USE');
    expect(String(refused)).toContain(`${prefix}-voluser`);
    expect((await docker.getVolume(name).inspect()).Options).toEqual(tmpfs);

    await user.remove();
    const recreated = await actuator.execute(recreate);
    expect(recreated).toMatchObject({ verb: 'recreated', name, detail: { dataLoss: false } });
    const after = await docker.getVolume(name).inspect();
    expect(after.Options).toEqual({ ...tmpfs, o: 'size=2m' });
    expect(after.Labels).toMatchObject({ [LABELS.owner]: owner });
  });

  it('refuses to create a volume over one of the same name that is not its own', async () => {
    const name = `${prefix}-takenvol`;
    await docker.createVolume({ Name: name, Labels: runLabels() });
    const action = only(planVolume(resource('Volume', name, {}), undefined), 'create');
    expect(code(await failure(actuator.execute(action)))).toBe('SK_DOCKER_CONFLICT');
  });

  it('creates a config, and prunes the old version only once the service has moved off it', async () => {
    const configName = `${prefix}-cfg`;
    const serviceName = `${prefix}-cfguser`;
    const v1 = resource('Config', configName, { data: 'a=1\n' });
    const createV1 = only(planConfig(v1, []), 'create');
    const first = await actuator.execute(createV1);
    expect(first).toMatchObject({ verb: 'created', kind: 'Config' });
    const v1Info = await docker.getConfig(first.id ?? '').inspect();
    expect(v1Info.Spec?.Labels).toMatchObject({ [LABELS.owner]: owner, [LABELS.resource]: configName });

    const serviceSpec = {
      image: IMAGE,
      command: ['sleep', '3600'],
      stopGracePeriod: '1s',
      configs: [{ source: configName, target: '/etc/app.conf' }],
    };
    const withConfig = (id: string, realised: string): ReconcileContext => ({
      ...emptyContext(),
      realisedConfigs: new Map([[configName, { id, name: realised }]]),
    });
    const service = resource('Service', serviceName, serviceSpec);
    await actuator.execute(
      only(planService(service, undefined, withConfig(first.id ?? '', first.name)), 'create'),
    );

    const v2 = resource('Config', configName, { data: 'a=2\n' });
    const observed = await docker.listConfigs({ filters: { label: [`${LABELS.resource}=${configName}`] } });
    const plan = planConfig(v2, observed);
    const second = await actuator.execute(only(plan, 'create'));
    const prune = only(plan, 'prune');
    const refused = await failure(actuator.execute(prune, { kind: 'Config', name: configName }));
    expect(code(refused)).toBe('SK_DOCKER_IN_USE');

    const current = await inspectService(serviceName);
    const move = only(planService(service, current, withConfig(second.id ?? '', second.name)), 'update');
    await actuator.execute(move);
    // No subject: the actuator finds out itself that the ID is a config's.
    const pruned = await eventually(() =>
      actuator.execute(prune).then(
        (r) => r,
        (error: unknown) => {
          if (code(error) === 'SK_DOCKER_IN_USE') return undefined;
          throw error;
        },
      ),
    );
    expect(pruned).toMatchObject({
      verb: 'pruned',
      kind: 'Config',
      name: first.name,
      detail: { absent: false },
    });
    await expect(docker.getConfig(first.id ?? '').inspect()).rejects.toMatchObject({ statusCode: 404 });
    const left = await docker.listConfigs({ filters: { label: [`${LABELS.resource}=${configName}`] } });
    expect(left.map((c) => c.ID)).toEqual([second.id]);
  });

  it('creates a secret, relabels it through its update endpoint, and removes it', async () => {
    const name = `${prefix}-sec`;
    const created = await actuator.execute(
      only(planSecret(resource('Secret', name, { data: 's3cret' }), []), 'create'),
    );
    expect(created).toMatchObject({ verb: 'created', kind: 'Secret' });
    const listed = await docker.listSecrets({ filters: { label: [`${LABELS.resource}=${name}`] } });
    expect(listed.map((s) => s.Spec?.Labels?.[LABELS.owner])).toEqual([owner]);

    const relabelled = resource('Secret', name, { data: 's3cret' }, { tier: 'edge' });
    const update = only(planSecret(relabelled, listed), 'update');
    expect(await actuator.execute(update)).toMatchObject({ verb: 'updated', id: created.id });
    const after = await docker.listSecrets({ filters: { label: [`${LABELS.resource}=${name}`] } });
    expect(after[0]?.Spec?.Labels).toMatchObject({ tier: 'edge', [LABELS.owner]: owner });
    expect(planSecret(relabelled, after)).toEqual([{ type: 'none', drift: [] }]);

    expect(await actuator.remove('Secret', name)).toMatchObject({ verb: 'removed', detail: { versions: 1 } });
    expect(await docker.listSecrets({ filters: { label: [`${LABELS.resource}=${name}`] } })).toEqual([]);
  });

  it('creates a container on two networks, stops, starts and recreates it', async () => {
    const bridge = `${prefix}-bridge`;
    await actuator.execute(
      only(planNetwork(resource('Network', bridge, { driver: 'bridge' }), undefined), 'create'),
    );
    const overlay = `${prefix}-net`;
    const name = `${prefix}-ctr`;
    const spec = {
      image: IMAGE,
      command: ['sleep', '3600'],
      env: { A: '1' },
      networks: [overlay, { name: bridge, aliases: ['proxy'] }],
    };
    const desired = resource('Container', name, spec);
    const created = await actuator.execute(
      only(planContainer(desired, undefined, await context()), 'create'),
    );
    expect(created).toMatchObject({ verb: 'created', kind: 'Container', name });
    let info = await docker.getContainer(name).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels).toMatchObject({ [LABELS.owner]: owner, [LABELS.managed]: 'true' });
    expect(Object.keys(info.NetworkSettings.Networks).sort()).toEqual([bridge, overlay].sort());
    expect(info.NetworkSettings.Networks[bridge]?.Aliases).toContain('proxy');
    expect(planContainer(desired, info, await context())).toEqual([{ type: 'none', drift: [] }]);

    const stopped = resource('Container', name, { ...spec, state: 'stopped' });
    const stop = only(planContainer(stopped, info, await context()), 'stop');
    expect(await actuator.execute(stop, { kind: 'Container', name })).toMatchObject({
      verb: 'stopped',
      name,
    });
    info = await docker.getContainer(name).inspect();
    expect(info.State.Running).toBe(false);

    const start = only(planContainer(desired, info, await context()), 'start');
    expect(await actuator.execute(start)).toMatchObject({ verb: 'started', name, id: info.Id });
    expect((await docker.getContainer(name).inspect()).State.Running).toBe(true);

    const changed = resource('Container', name, { ...spec, env: { A: '2' } });
    const recreate = only(planContainer(changed, info, await context()), 'recreate');
    const recreated = await actuator.execute(recreate);
    expect(recreated).toMatchObject({ verb: 'recreated', name, detail: { oldId: info.Id } });
    info = await docker.getContainer(name).inspect();
    expect(info.Id).toBe(recreated.id);
    expect(info.Config.Env).toContain('A=2');
    expect(info.State.Running).toBe(true);
    expect(info.NetworkSettings.Networks[bridge]?.Aliases).toContain('proxy');
    expect(planContainer(changed, info, await context())).toEqual([{ type: 'none', drift: [] }]);
  });

  it('remove() refuses objects without the managed and owner labels, and removes its own', async () => {
    // By hand, as a user would: no swarmkeeper labels at all.
    const foreignVolume = `${prefix}-foreign`;
    await docker.createVolume({ Name: foreignVolume, Labels: runLabels() });
    const refusedVolume = await failure(actuator.remove('Volume', foreignVolume));
    expect(refusedVolume).toBeInstanceOf(NotOwnedError);
    expect(code(refusedVolume)).toBe('SK_NOT_OWNED');
    await docker.getVolume(foreignVolume).inspect();

    // Managed, but by another deployment.
    const otherService = `${prefix}-other`;
    await docker.createService({
      Name: otherService,
      Labels: { ...runLabels(), [LABELS.managed]: 'true', [LABELS.owner]: 'someone-else' },
      TaskTemplate: { ContainerSpec: { Image: IMAGE, Args: ['sleep', '3600'], StopGracePeriod: 1e9 } },
      Mode: { Replicated: { Replicas: 0 } },
    });
    expect(code(await failure(actuator.remove('Service', otherService)))).toBe('SK_NOT_OWNED');
    await docker.getService(otherService).inspect();

    // A network of ours with a container on it is in use.
    const inUse = await failure(actuator.remove('Network', `${prefix}-bridge`));
    expect(code(inUse)).toBe('SK_DOCKER_IN_USE');
    expect(String(inUse)).toContain(`${prefix}-ctr`);

    const reports: ActionReport[] = [];
    reports.push(await actuator.remove('Container', `${prefix}-ctr`));
    reports.push(await actuator.remove('Network', `${prefix}-bridge`));
    reports.push(await actuator.remove('Service', `${prefix}-svc`));
    reports.push(await actuator.remove('Service', `${prefix}-cfguser`));
    reports.push(await actuator.remove('Volume', `${prefix}-vol`));
    expect(reports.map((r) => [r.verb, r.kind, r.detail?.absent])).toEqual([
      ['removed', 'Container', undefined],
      ['removed', 'Network', undefined],
      ['removed', 'Service', undefined],
      ['removed', 'Service', undefined],
      ['removed', 'Volume', undefined],
    ]);
    await expect(docker.getContainer(`${prefix}-ctr`).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(docker.getVolume(`${prefix}-vol`).inspect()).rejects.toMatchObject({ statusCode: 404 });

    // Every version of the config, once the service using it has gone.
    const config = await eventually(() =>
      actuator.remove('Config', `${prefix}-cfg`).then(
        (r) => r,
        (error: unknown) => {
          if (code(error) === 'SK_DOCKER_IN_USE') return undefined;
          throw error;
        },
      ),
    );
    expect(config).toMatchObject({ verb: 'removed', kind: 'Config', detail: { versions: 1 } });
    expect(await docker.listConfigs({ filters: { label: [`${LABELS.resource}=${prefix}-cfg`] } })).toEqual(
      [],
    );

    // Gone already counts as removed.
    expect(await actuator.remove('Service', `${prefix}-svc`)).toMatchObject({ detail: { absent: true } });
  });

  it('reports an unreachable engine as SK_DOCKER_UNAVAILABLE', async () => {
    const offline = new DockerActuator({
      docker: createDocker({ socketPath: '/nonexistent/docker.sock' }),
      owner,
      journal: new RedisNetworkRecreateJournal({ redis, keys: new KeySpace(owner) }),
    });
    const action = only(planNetwork(resource('Network', `${prefix}-never`, {}), undefined), 'create');
    const error = await failure(offline.execute(action));
    expect(code(error)).toBe('SK_DOCKER_UNAVAILABLE');
    expect(toDockerError(new TypeError('a bug'), 'x')).toBeInstanceOf(TypeError);
  });
});

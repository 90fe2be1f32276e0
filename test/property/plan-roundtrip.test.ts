/**
 * Property: a plan carried out and observed again plans nothing. Resources are generated from the
 * zod schemas' shapes (valid by construction, and checked), translated by the pure core, turned
 * into what the engine would report back (Swarm's filled-in defaults, Go's dropped zero values,
 * pinned digests, labels others add; see test/fixtures/observed), and planned again.
 */
import type {
  ContainerInspectInfo,
  NetworkCreateOptions,
  NetworkInspectInfo,
  Service,
  ServiceSpec,
  VolumeCreateOptions,
  VolumeInspectInfo,
} from 'dockerode';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { z } from 'zod';
import { decodeResource, encodeResource } from '../../src/desired/codec.js';
import {
  defaults,
  fnv1a64,
  planConfig,
  planContainer,
  planNetwork,
  planSecret,
  planService,
  planVolume,
  type ContainerBlueprint,
  type ObservedPayload,
  type ReconcileContext,
} from '../../src/reconcile/index.js';
import { asArray, asRecord, type JsonRecord } from '../../src/reconcile/normalise.js';
import {
  absolutePath,
  byteSize,
  cpuCount,
  duration,
  engineObjectName,
  stringMap,
  swarmObjectName,
  userLabels,
} from '../../src/resources/common.js';
import { KIND_DEFINITIONS, type Kind } from '../../src/resources/kinds/index.js';
import { payloadName } from '../../src/resources/kinds/payload.js';
import { mount } from '../../src/resources/kinds/workload.js';
import { ANNOTATIONS, API_VERSION, LABELS } from '../../src/resources/metadata.js';
import { parseManifestText } from '../../src/resources/manifest.js';
import {
  toManifest,
  validateResource,
  type Resource,
  type ResourceOf,
} from '../../src/resources/resource.js';

/** Runs per property; `SWARMKEEPER_FUZZ_RUNS=5000 npx vitest run test/property` fuzzes harder. */
const RUNS = Number(process.env.SWARMKEEPER_FUZZ_RUNS ?? 200);
const OWNER = 'sktest:property';

// ---------------------------------------------------------------------------------------------
// Arbitraries from the schemas

type Schema = z.core.$ZodType;
const defOf = (schema: Schema): z.core.$ZodTypes['_zod']['def'] => (schema as z.core.$ZodTypes)._zod.def;

interface Checks {
  min?: number;
  max?: number;
  minInclusive?: boolean;
  maxInclusive?: boolean;
  int?: boolean;
  pattern?: RegExp;
  custom?: boolean;
}

function checksOf(schema: Schema): Checks {
  const out: Checks = {};
  for (const check of (defOf(schema) as unknown as { checks?: Schema[] }).checks ?? []) {
    const def = (check as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    switch (def.check) {
      case 'min_length':
        out.min = Math.max(out.min ?? 0, Number(def.minimum));
        break;
      case 'max_length':
        out.max = Math.min(out.max ?? Number.MAX_SAFE_INTEGER, Number(def.maximum));
        break;
      case 'greater_than':
        out.min = Number(def.value);
        out.minInclusive = def.inclusive === true;
        break;
      case 'less_than':
        out.max = Number(def.value);
        out.maxInclusive = def.inclusive === true;
        break;
      case 'number_format':
        out.int = true;
        break;
      case 'string_format':
        if (def.pattern instanceof RegExp) out.pattern = def.pattern;
        break;
      default:
        out.custom = true;
    }
  }
  return out;
}

const lower = 'abcdefghijklmnopqrstuvwxyz0123456789';
const word = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...lower), minLength: min, maxLength: max });

/** Swarm object names, at most 30 characters, separators only between letters and digits. */
const swarmName = fc
  .tuple(word(1, 8), fc.array(fc.tuple(fc.constantFrom('-', '_', '.', '--'), word(1, 6)), { maxLength: 3 }))
  .map(([head, rest]) => head + rest.map(([sep, part]) => sep + part).join(''));
const engineName = fc
  .tuple(
    word(1, 1),
    fc.string({ unit: fc.constantFrom(...lower, '_', '.', '-'), minLength: 1, maxLength: 20 }),
  )
  .map(([a, b]) => a + b);
const pathArb = fc
  .array(fc.oneof(word(1, 8), fc.constantFrom('..', '.', 'with space', 'ü')), { minLength: 0, maxLength: 4 })
  .map((parts) => `/${parts.join('/')}`);
const durationArb = fc.oneof(
  fc.constant('0'),
  fc
    .array(
      fc.tuple(
        fc.oneof(
          fc.nat({ max: 300 }).map(String),
          fc.tuple(fc.nat({ max: 99 }), fc.nat({ max: 999 })).map(([a, b]) => `${a}.${b}`),
        ),
        fc.constantFrom('ns', 'us', 'µs', 'ms', 's', 'm', 'h'),
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((parts) => parts.map(([n, unit]) => n + unit).join('')),
);
const sizeArb = fc.oneof(
  fc.nat({ max: 2 ** 40 }),
  fc
    .tuple(
      fc.nat({ max: 4096 }),
      fc.constantFrom('', 'b', 'k', 'K', 'Ki', 'kb', 'KiB', 'm', 'M', 'Mi', 'g', 'G', 'Gi', 't', 'Ti'),
    )
    .map(([n, unit]) => `${n}${unit}`),
  fc.tuple(fc.nat({ max: 64 }), fc.nat({ max: 9 })).map(([n, d]) => `${n}.${d}M`),
);
const cpuArb = fc.oneof(
  fc.integer({ min: 1, max: 64 }),
  fc.integer({ min: 1, max: 64_000 }).map((milli) => milli / 1000),
  fc.integer({ min: 1, max: 64_000 }).map((milli) => String(milli / 1000)),
);
/** Label keys from a small pool, so collisions between metadata and container labels happen. */
const labelKeyArb = fc.oneof(
  fc.constantFrom('team', 'app', 'role', 'com.example.tier'),
  word(1, 10),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
);
const userLabelsArb = fc
  .dictionary(labelKeyArb, fc.string({ maxLength: 12 }), { maxKeys: 3, noNullPrototype: true })
  .map((labels) =>
    Object.fromEntries(Object.entries(labels).filter(([k]) => !k.startsWith('io.swarmkeeper.'))),
  );
const mountArb = fc.oneof(
  fc.record(
    {
      type: fc.constant('volume' as const),
      source: engineName,
      target: pathArb,
      readOnly: fc.boolean(),
      volume: fc.record(
        {
          noCopy: fc.boolean(),
          driver: fc.constantFrom('local', 'nfs', 'rexray'),
          driverOpts: fc.dictionary(word(1, 6), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
          labels: fc.dictionary(word(1, 6), fc.string({ maxLength: 10 }), { maxKeys: 2 }),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['target'] },
  ),
  fc.record(
    {
      type: fc.constant('bind' as const),
      source: pathArb,
      target: pathArb,
      readOnly: fc.boolean(),
      bind: fc.record(
        { propagation: fc.constantFrom('private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave') },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['type', 'source', 'target'] },
  ),
  fc.record(
    {
      type: fc.constant('tmpfs' as const),
      target: pathArb,
      readOnly: fc.boolean(),
      tmpfs: fc.record({ size: sizeArb, mode: fc.nat({ max: 0o7777 }) }, { requiredKeys: [] }),
    },
    { requiredKeys: ['type', 'target'] },
  ),
);

/** String maps (container labels, driver options) whose keys may collide with labels swarmkeeper writes. */
const stringMapArb = fc.dictionary(
  fc.oneof(labelKeyArb, fc.constantFrom(...Object.values(LABELS), 'encrypted', 'type', 'device')),
  fc.string({ maxLength: 12 }),
  { maxKeys: 3, noNullPrototype: true },
);

/** Leaf schemas whose refinements a generic walk cannot satisfy, by identity. */
const OVERRIDES = new Map<Schema, fc.Arbitrary<unknown>>([
  [stringMap, stringMapArb],
  [swarmObjectName, swarmName],
  [payloadName, swarmName],
  [engineObjectName, engineName],
  [absolutePath, pathArb],
  [duration, durationArb],
  [byteSize, sizeArb],
  [cpuCount, cpuArb],
  [mount, mountArb],
  [userLabels, userLabelsArb],
]);

/** An arbitrary for any value a schema accepts, walked from its definition. */
function arbitraryOf(schema: Schema, where: string): fc.Arbitrary<unknown> {
  const override = OVERRIDES.get(schema);
  if (override) return override;
  const def = defOf(schema);
  const checks = checksOf(schema);
  switch (def.type) {
    case 'optional':
      return arbitraryOf(def.innerType, where);
    case 'string': {
      if ((def as { format?: string }).format === 'email')
        return fc.tuple(word(1, 8), word(1, 8)).map(([user, host]) => `${user}@${host}.org`);
      if (checks.custom) throw new Error(`${where}: a refined string needs an override`);
      const min = checks.min ?? 0;
      const max = Math.min(checks.max ?? 24, 24);
      if (checks.pattern) {
        return fc
          .stringMatching(checks.pattern)
          .filter((s) => s.length >= min && s.length <= (checks.max ?? 1e9));
      }
      return fc.string({ unit: 'grapheme', minLength: min, maxLength: Math.max(min, max) });
    }
    case 'number': {
      if (checks.custom) throw new Error(`${where}: a refined number needs an override`);
      const min = checks.min ?? -1_000_000;
      const max = checks.max ?? 1_000_000;
      if (checks.int)
        return fc.integer({
          min: checks.minInclusive === false ? min + 1 : min,
          max: checks.maxInclusive === false ? max - 1 : max,
        });
      return fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
    }
    case 'boolean':
      return fc.boolean();
    case 'enum':
      return fc.constantFrom(...Object.values(def.entries));
    case 'literal':
      return fc.constantFrom(...def.values);
    case 'array': {
      const min = checks.min ?? 0;
      return fc.array(arbitraryOf(def.element, `${where}[]`), {
        minLength: min,
        maxLength: Math.max(min, 3),
      });
    }
    case 'record':
      return fc.dictionary(
        arbitraryOf(def.keyType, `${where}{key}`) as fc.Arbitrary<string>,
        arbitraryOf(def.valueType, `${where}{}`),
        { maxKeys: 3, noNullPrototype: true },
      );
    case 'union':
      return fc.oneof(...def.options.map((option, i) => arbitraryOf(option, `${where}|${i}`)));
    case 'object': {
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      const required: string[] = [];
      for (const [key, member] of Object.entries(def.shape)) {
        model[key] = arbitraryOf(member, `${where}.${key}`);
        if (defOf(member).type !== 'optional') required.push(key);
      }
      return fc.record(model, { requiredKeys: required });
    }
    default:
      throw new Error(`${where}: no arbitrary for zod type ${def.type}`);
  }
}

/** A spec of `kind` from its schema's shape, member by member (object-level refinements aside). */
function specFromShape(kind: Kind): fc.Arbitrary<Record<string, unknown>> {
  return arbitraryOf(KIND_DEFINITIONS[kind].spec, `${kind}.spec`) as fc.Arbitrary<Record<string, unknown>>;
}

const imageArb = fc
  .tuple(
    fc.constantFrom('', 'docker.io/library/', 'docker.io/', 'registry.example.org:5000/', 'ghcr.io/'),
    fc.array(word(1, 8), { minLength: 1, maxLength: 2 }),
    fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,9}$/), { nil: undefined }),
    fc.option(fc.stringMatching(/^[0-9a-f]{64}$/), { nil: undefined }),
  )
  .map(
    ([registry, path, tag, digest]) =>
      `${registry}${path.join('/')}${tag === undefined ? '' : `:${tag}`}${digest === undefined ? '' : `@sha256:${digest}`}`,
  );

const annotationsArb = fc.record(
  {
    [ANNOTATIONS.ignoreFields]: fc.constantFrom('replicas', 'env', 'resources.limits', 'spec.image, mounts'),
    'example.org/owner': fc.string({ maxLength: 10 }),
  },
  { requiredKeys: [] },
);

function metadataArb(nameArb: fc.Arbitrary<string>): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    { name: nameArb, labels: userLabelsArb, annotations: annotationsArb },
    { requiredKeys: ['name'] },
  );
}

/** Container networks as the engine allows them: user networks (aliases allowed), or one built-in alone. */
const containerNetworksArb = fc.oneof(
  fc.array(
    fc.oneof(
      swarmName,
      fc.record(
        { name: swarmName, aliases: fc.array(word(1, 6), { maxLength: 3 }) },
        { requiredKeys: ['name'] },
      ),
    ),
    { maxLength: 3 },
  ),
  fc.constantFrom('bridge', 'host', 'none', 'default').map((name) => [name]),
);

function manifest(kind: Kind, metadata: unknown, spec: unknown): unknown {
  return { apiVersion: API_VERSION, kind, metadata, spec };
}

/** A manifest document; `resourceOf` validates it. */
const documents = {
  Service: fc
    .tuple(metadataArb(swarmName), specFromShape('Service'), imageArb)
    .map(([metadata, spec, image]) => {
      const fixed: Record<string, unknown> = { ...spec, image };
      if (fixed.mode === 'global') delete fixed.replicas;
      return manifest('Service', metadata, fixed);
    }),
  Network: fc
    .tuple(metadataArb(swarmName), specFromShape('Network'))
    .map(([metadata, spec]) => manifest('Network', metadata, spec)),
  Volume: fc
    .tuple(metadataArb(engineName), specFromShape('Volume'))
    .map(([metadata, spec]) => manifest('Volume', metadata, spec)),
  Container: fc
    .tuple(
      metadataArb(engineName),
      specFromShape('Container'),
      imageArb,
      fc.option(containerNetworksArb, { nil: undefined }),
      fc.option(stringMapArb, { nil: undefined }),
    )
    .map(([metadata, spec, image, networks, labels]) => {
      const fixed: Record<string, unknown> = { ...spec, image };
      if (networks === undefined) delete fixed.networks;
      else fixed.networks = networks;
      // Drawn from the pool metadata.labels uses, so both may name the same label.
      if (labels === undefined) delete fixed.containerLabels;
      else
        fixed.containerLabels = Object.fromEntries(
          Object.entries(labels).filter(([key]) => !key.startsWith('io.swarmkeeper.')),
        );
      return manifest('Container', metadata, fixed);
    }),
  Config: fc
    .tuple(metadataArb(swarmName), fc.string({ unit: 'grapheme', maxLength: 200 }))
    .map(([metadata, data]) => manifest('Config', metadata, { data })),
  Secret: fc
    .tuple(metadataArb(swarmName), fc.string({ unit: 'binary', maxLength: 200 }))
    .map(([metadata, data]) => manifest('Secret', metadata, { data })),
};

function resourceOf<K extends Kind>(document: unknown): ResourceOf<K> {
  const result = validateResource(document);
  if (!result.ok) throw new Error(`generated an invalid resource: ${JSON.stringify(result.issues)}`);
  return result.resource as ResourceOf<K>;
}

// ---------------------------------------------------------------------------------------------
// What the engine reports back

const DIGEST = `sha256:${'5e'.repeat(32)}`;
/** Labels others put on objects (a test harness, `docker stack deploy`); the diff must leave them be. */
const FOREIGN_LABELS = { 'com.docker.stack.namespace': 'hub', [LABELS.owner]: OWNER };

interface EchoOptions {
  /** The CLI resolved the tag to a digest and pinned it (`nginx` → `nginx:latest@sha256:…`). */
  readonly pinDigest: boolean;
  /** Someone ran `docker service update` with the CLI, which writes its defaults out. */
  readonly cliDefaults: boolean;
}
const echoOptions = fc.record({ pinDigest: fc.boolean(), cliDefaults: fc.boolean() });

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Go's `omitempty`: a zero number, empty string or false member is not in the JSON at all. */
function omitZero(record: JsonRecord | undefined, ...keys: string[]): void {
  if (record === undefined) return;
  for (const key of keys)
    if (record[key] === 0 || record[key] === '' || record[key] === false) delete record[key];
}

function pinned(image: string): string {
  if (image.includes('@')) return image;
  const slash = image.lastIndexOf('/');
  const hasTag = image.lastIndexOf(':') > slash;
  return `${image}${hasTag ? '' : ':latest'}@${DIGEST}`;
}

/** `docker service inspect` of a service created or updated with `sent`. */
function swarmService(sent: ServiceSpec, options: EchoOptions, version = 17): Service {
  const spec = clone(sent) as JsonRecord;
  const task = asRecord(spec.TaskTemplate) ?? {};
  spec.TaskTemplate = task;
  const container = asRecord(task.ContainerSpec) ?? {};
  task.ContainerSpec = container;
  // What the engine adds on the way out (test/fixtures/observed/service-roundtrip*.json).
  container.Isolation = 'default';
  task.ForceUpdate = 0;
  task.Runtime = 'container';
  if (options.pinDigest && typeof container.Image === 'string') container.Image = pinned(container.Image);
  for (const raw of asArray(container.Mounts)) {
    const m = asRecord(raw);
    omitZero(m, 'ReadOnly');
    omitZero(asRecord(m?.TmpfsOptions), 'SizeBytes', 'Mode');
  }
  omitZero(asRecord(container.Healthcheck), 'Interval', 'Timeout', 'StartPeriod', 'Retries');
  omitZero(asRecord(asRecord(task.Resources)?.Limits), 'NanoCPUs', 'MemoryBytes', 'Pids');
  omitZero(asRecord(asRecord(task.Resources)?.Reservations), 'NanoCPUs', 'MemoryBytes');
  omitZero(asRecord(task.Placement), 'MaxReplicas');
  for (const name of ['UpdateConfig', 'RollbackConfig']) {
    const policy = asRecord(spec[name]);
    if (!policy) continue;
    omitZero(policy, 'Parallelism', 'Delay', 'Monitor');
    policy.FailureAction ??= 'pause';
    // swarmkit keeps the ratio as a float32.
    policy.MaxFailureRatio = Math.fround(
      typeof policy.MaxFailureRatio === 'number' ? policy.MaxFailureRatio : 0,
    );
  }
  for (const raw of asArray(asRecord(spec.EndpointSpec)?.Ports)) omitZero(asRecord(raw), 'PublishedPort');
  const endpoint = asRecord(spec.EndpointSpec);
  if (endpoint) endpoint.Mode ??= 'vip';
  spec.Labels = { ...FOREIGN_LABELS, ...asRecord(spec.Labels) };
  if (options.cliDefaults) {
    // What `docker service create` writes for what it was not told (service-cli-minimal.json).
    container.Init = false;
    container.DNSConfig = {};
    container.StopGracePeriod ??= defaults.SWARM_STOP_GRACE_PERIOD;
    task.Resources ??= { Limits: {}, Reservations: {} };
    task.Placement ??= {};
    task.RestartPolicy ??= { Condition: 'any', Delay: 5_000_000_000, MaxAttempts: 0 };
    for (const name of ['UpdateConfig', 'RollbackConfig']) {
      spec[name] ??= {
        Parallelism: 1,
        FailureAction: 'pause',
        Monitor: 5_000_000_000,
        MaxFailureRatio: 0,
        Order: 'stop-first',
      };
    }
    spec.EndpointSpec ??= { Mode: 'vip' };
  }
  return {
    ID: 'svc0000000000000000000001',
    Version: { Index: version },
    CreatedAt: '2026-01-01T00:00:00Z',
    UpdatedAt: '2026-01-01T00:00:00Z',
    Spec: spec,
    Endpoint: { Spec: asRecord(spec.EndpointSpec) ?? {} },
  } as unknown as Service;
}

/** `docker network inspect` of a network created with `sent`. */
function engineNetwork(sent: NetworkCreateOptions): NetworkInspectInfo {
  const driver = sent.Driver ?? defaults.DEFAULT_NETWORK_DRIVER;
  const wanted = asArray(sent.IPAM?.Config).map((c) => ({ ...asRecord(c) }));
  // The engine allocates a pool when none is asked for, and a gateway for a subnet without one.
  const config =
    wanted.length > 0
      ? wanted.map((c) =>
          c.Subnet !== undefined && c.Gateway === undefined ? { ...c, Gateway: '10.9.0.1' } : c,
        )
      : driver === 'overlay'
        ? [{ Subnet: '10.0.24.0/24', Gateway: '10.0.24.1' }]
        : [{ Subnet: '172.20.0.0/16', Gateway: '172.20.0.1' }];
  return {
    Name: sent.Name,
    Id: 'o7tvrkl08zo2stu4o62mh7eqo',
    Created: '2026-01-01T00:00:00Z',
    Scope: driver === 'overlay' ? 'swarm' : 'local',
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: sent.IPAM?.Driver ?? 'default', Options: null, Config: config },
    Internal: sent.Internal ?? false,
    Attachable: sent.Attachable ?? false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: {
      ...sent.Options,
      ...(driver === 'overlay' && { 'com.docker.network.driver.overlay.vxlanid_list': '4121' }),
    },
    Labels: { ...FOREIGN_LABELS, ...sent.Labels },
  } as unknown as NetworkInspectInfo;
}

/** `docker volume inspect` of a volume created with `sent`. */
function engineVolume(sent: VolumeCreateOptions): VolumeInspectInfo {
  return {
    CreatedAt: '2026-01-01T00:00:00Z',
    Driver: sent.Driver ?? 'local',
    Labels: { ...FOREIGN_LABELS, ...sent.Labels },
    Mountpoint: `/var/lib/docker/volumes/${sent.Name}/_data`,
    Name: sent.Name,
    Options: sent.DriverOpts ?? null,
    Scope: 'local',
  } as unknown as VolumeInspectInfo;
}

const SHORT_ID = 'a02df5006660';
const IMAGE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'];
const IMAGE_LABELS = { 'org.opencontainers.image.vendor': 'example' };

/** `docker container inspect` of a container created from `blueprint`, connected and started. */
function engineContainer(blueprint: ContainerBlueprint): ContainerInspectInfo {
  const create = blueprint.create;
  const host = create.HostConfig ?? {};
  const env = create.Env ?? [];
  const names = new Set(env.map((e) => e.split('=')[0]));
  const networks: Record<string, { Aliases: string[] | null; NetworkID: string }> = {};
  const attach = (network: string, aliases: readonly string[] | undefined): void => {
    // NetworkMode "default" is the default bridge, which is how the engine reports it.
    const name = network === 'default' ? 'bridge' : network;
    const user = !defaults.BUILTIN_NETWORKS.has(network);
    networks[name] = { Aliases: user ? [...(aliases ?? []), SHORT_ID] : null, NetworkID: `net-${name}` };
  };
  const first = host.NetworkMode;
  if (first === undefined) attach('bridge', undefined);
  else attach(first, create.NetworkingConfig?.EndpointsConfig?.[first]?.Aliases);
  for (const link of blueprint.connect) attach(link.network, link.aliases);
  return {
    Id: `${SHORT_ID}${'0'.repeat(52)}`,
    Name: `/${create.name}`,
    State: {
      Status: blueprint.state === 'running' ? 'running' : 'exited',
      Running: blueprint.state === 'running',
    },
    Config: {
      Hostname: create.Hostname ?? SHORT_ID,
      User: create.User ?? '',
      Env: [...env, ...IMAGE_ENV.filter((e) => !names.has(e.split('=')[0]))],
      Cmd: create.Cmd ?? ['sh'],
      Entrypoint: create.Entrypoint ?? null,
      Image: create.Image,
      WorkingDir: create.WorkingDir ?? '',
      Labels: { ...IMAGE_LABELS, ...create.Labels, [LABELS.owner]: OWNER },
      ...(create.Healthcheck && { Healthcheck: create.Healthcheck }),
    },
    HostConfig: {
      Binds: null,
      NetworkMode: first ?? 'default',
      // @types/dockerode types these members `any`: read them as the JSON they are.
      PortBindings: (host.PortBindings as unknown) ?? {},
      RestartPolicy: (host.RestartPolicy as unknown) ?? { Name: 'no', MaximumRetryCount: 0 },
      CapAdd: (host.CapAdd as unknown) ?? null,
      CapDrop: (host.CapDrop as unknown) ?? null,
      Memory: host.Memory ?? 0,
      NanoCpus: host.NanoCpus ?? 0,
      PidsLimit: host.PidsLimit ?? null,
      ...(host.Mounts && { Mounts: host.Mounts }),
    },
    NetworkSettings: { Networks: networks },
  } as unknown as ContainerInspectInfo;
}

/** A config or secret as inspect reports it; the engine never returns a secret's data. */
function enginePayload(
  body: { Name?: string | undefined; Labels?: Record<string, string> | undefined; Data?: string | undefined },
  withData: boolean,
): ObservedPayload {
  return {
    ID: 'lmuf9y8mao60bsnnznxbjuwto',
    Version: { Index: 806 },
    Spec: {
      Name: body.Name,
      Labels: { ...FOREIGN_LABELS, ...body.Labels },
      ...(withData && { Data: body.Data }),
    },
  };
}

/** Network IDs and realised configs and secrets for everything the workloads refer to. */
function contextFor(...resources: Resource[]): ReconcileContext {
  const networks = new Map<string, string>();
  const realisedConfigs = new Map<string, { id: string; name: string }>();
  const realisedSecrets = new Map<string, { id: string; name: string }>();
  const id = (name: string): string => fnv1a64(name).padEnd(25, 'x');
  for (const resource of resources) {
    if (resource.kind !== 'Service' && resource.kind !== 'Container') continue;
    for (const a of resource.spec.networks ?? []) {
      const name = typeof a === 'string' ? a : a.name;
      networks.set(name, id(`net ${name}`));
    }
    if (resource.kind !== 'Service') continue;
    for (const ref of resource.spec.configs ?? [])
      realisedConfigs.set(ref.source, { id: id(`conf ${ref.source}`), name: `${ref.source}-0badc0de` });
    for (const ref of resource.spec.secrets ?? [])
      realisedSecrets.set(ref.source, { id: id(`secret ${ref.source}`), name: `${ref.source}-5ec7e700` });
  }
  return { networks, realisedConfigs, realisedSecrets };
}

function only<T extends { type: string }, K extends T['type']>(
  actions: readonly T[],
  type: K,
): Extract<T, { type: K }> {
  expect(actions.map((a) => a.type)).toEqual([type]);
  return actions[0] as Extract<T, { type: K }>;
}

const NOTHING = [{ type: 'none', drift: [] }];

// ---------------------------------------------------------------------------------------------

describe('generated resources', () => {
  it.each(Object.keys(documents) as (keyof typeof documents)[])(
    '%s documents are valid by construction',
    (kind) => {
      fc.assert(
        fc.property(documents[kind], (document) => {
          const result = validateResource(document);
          expect(result.ok ? [] : result.issues).toEqual([]);
        }),
        { numRuns: RUNS },
      );
    },
  );
});

describe('generated resources survive storage', () => {
  const anyDocument = fc.oneof(...Object.values(documents));

  it('the Redis codec reads every one back as itself', () => {
    fc.assert(
      fc.property(anyDocument, (document) => {
        const resource = resourceOf(document);
        const hash = encodeResource(resource);
        expect(decodeResource(resource.kind, resource.metadata.name, hash)).toEqual({ ok: true, resource });
      }),
      { numRuns: RUNS },
    );
  });

  it('a manifest written as YAML parses back to the same resource', async () => {
    await fc.assert(
      fc.asyncProperty(anyDocument, async (document) => {
        const resource = resourceOf(document);
        const parsed = await parseManifestText(stringify(toManifest(resource)), 'gen.yaml', '/nonexistent');
        expect(parsed.issues).toEqual([]);
        expect(parsed.resources.map((r) => r.resource)).toEqual([resource]);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('a plan carried out and observed again plans nothing', () => {
  it('Service: create, then inspect', () => {
    fc.assert(
      fc.property(documents.Service, echoOptions, (document, options) => {
        const resource = resourceOf<'Service'>(document);
        const context = contextFor(resource);
        const create = only(planService(resource, undefined, context), 'create');
        expect(planService(resource, swarmService(create.body, options), context)).toEqual(NOTHING);
      }),
      { numRuns: RUNS },
    );
  });

  it('Service: any other version of it, updated or recreated, then inspect', () => {
    fc.assert(
      fc.property(documents.Service, documents.Service, echoOptions, (before, after, options) => {
        const old = resourceOf<'Service'>(before);
        const next = resourceOf<'Service'>({
          ...(after as object),
          metadata: { ...(after as { metadata: object }).metadata, name: old.metadata.name },
        });
        const context = contextFor(old, next);
        const running = swarmService(only(planService(old, undefined, context), 'create').body, options);
        const [action] = planService(next, running, context);
        if (action === undefined || action.type === 'none') return;
        if (action.type !== 'update' && action.type !== 'recreate') throw new Error(`planned ${action.type}`);
        if (action.type === 'update') expect(action.version).toBe(17);
        // The update body is the observed spec patched; Swarm stores it and reports it back.
        const updated = swarmService(action.body, { ...options, cliDefaults: false }, 18);
        expect(planService(next, updated, context)).toEqual(NOTHING);
      }),
      { numRuns: RUNS },
    );
  });

  it('Network: create, then inspect; and a changed network recreated, then inspect', () => {
    fc.assert(
      fc.property(documents.Network, documents.Network, (before, after) => {
        const old = resourceOf<'Network'>(before);
        const created = only(planNetwork(old, undefined), 'create');
        expect(planNetwork(old, engineNetwork(created.body))).toEqual(NOTHING);
        const next = resourceOf<'Network'>({ ...(after as object), metadata: old.metadata });
        const [action] = planNetwork(next, engineNetwork(created.body));
        if (action?.type === 'recreate')
          expect(planNetwork(next, engineNetwork(action.body))).toEqual(NOTHING);
        else expect(action?.type).toBe('none');
      }),
      { numRuns: RUNS },
    );
  });

  it('Volume: create, then inspect', () => {
    fc.assert(
      fc.property(documents.Volume, (document) => {
        const resource = resourceOf<'Volume'>(document);
        const created = only(planVolume(resource, undefined), 'create');
        expect(planVolume(resource, engineVolume(created.body))).toEqual(NOTHING);
      }),
      { numRuns: RUNS },
    );
  });

  it('Container: create, connect and start, then inspect; stopped or started back', () => {
    fc.assert(
      fc.property(documents.Container, (document) => {
        const resource = resourceOf<'Container'>(document);
        const context = contextFor(resource);
        const created = only(planContainer(resource, undefined, context), 'create');
        const inspected = engineContainer(created.body);
        expect(planContainer(resource, inspected, context)).toEqual(NOTHING);
        // The one setting that changes in place: the running state.
        const flipped = clone(inspected);
        flipped.State.Running = !flipped.State.Running;
        const [action] = planContainer(resource, flipped, context);
        expect(action?.type).toBe(created.body.state === 'running' ? 'start' : 'stop');
      }),
      { numRuns: RUNS },
    );
  });

  it('Config and Secret: create, then inspect', () => {
    fc.assert(
      fc.property(documents.Config, documents.Secret, (configDocument, secretDocument) => {
        const config = resourceOf<'Config'>(configDocument);
        const configCreate = only(planConfig(config, []), 'create');
        expect(planConfig(config, [enginePayload(configCreate.body, true)])).toEqual(NOTHING);
        const secret = resourceOf<'Secret'>(secretDocument);
        const secretCreate = only(planSecret(secret, []), 'create');
        expect(planSecret(secret, [enginePayload(secretCreate.body, false)])).toEqual(NOTHING);
      }),
      { numRuns: RUNS },
    );
  });
});

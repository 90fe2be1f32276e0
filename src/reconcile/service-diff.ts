/**
 * Swarm-aware comparison of a desired ServiceSpec with the `Spec` of `docker service inspect`, and
 * the update body that repairs the drift found.
 *
 * Only fields swarmkeeper can express are compared; everything else Swarm or the CLI fills in
 * (Isolation, Init, DNSConfig, Placement.Platforms, ForceUpdate, Runtime, …) is never read. For
 * the compared fields a missing value means the engine default, so the defaults the CLI writes out
 * (restart policy, update/rollback config, StopGracePeriod 10s, endpoint mode vip, empty Resources)
 * read the same as a manifest that leaves them out, and a manifest that drops a setting is drift.
 */
import type { ServiceSpec } from 'dockerode';
import {
  SWARM_ENDPOINT_MODE,
  SWARM_PUBLISH_MODE,
  SWARM_RESTART_DEFAULTS,
  SWARM_STOP_GRACE_PERIOD,
  SWARM_UPDATE_DEFAULTS,
  DEFAULT_PROTOCOL,
} from './defaults.js';
import {
  compareFields,
  diffLabels,
  isIgnored,
  toDiffResult,
  type DiffOptions,
  type DiffResult,
  type FieldRule,
} from './diff.js';
import { imagesEqual } from './image.js';
import {
  asArray,
  asNumber,
  asRecord,
  asString,
  capabilitySet,
  cloneJson,
  constraintText,
  envList,
  float32,
  getIn,
  healthcheck,
  isRecord,
  mountSet,
  nonEmptyString,
  optional,
  payloadRefSet,
  positiveNumber,
  setIn,
  sortedData,
  stringList,
  stringMap,
  stringSet,
  unlessDefault,
  type JsonRecord,
  type Location,
} from './normalise.js';

export interface ServiceDiffOptions extends DiffOptions {
  /** Network name → ID. Swarm stores attachments by ID; this reads them back as names. */
  readonly networks?: ReadonlyMap<string, string>;
}

interface ReadContext {
  /** Network ID → name. */
  readonly networkNames: ReadonlyMap<string, string>;
}

interface ServiceField {
  readonly path: string;
  readonly read: (spec: unknown, context: ReadContext) => unknown;
  /** Where the value lives; an ignored field is put back here after an update body is patched. */
  readonly at: Location;
  /**
   * What an update replaces when this field drifts. Wider than `at` for policies whose missing
   * members are not their defaults (an UpdateConfig without Parallelism means "all at once"), so
   * the whole policy is sent as the manifest states it. Every listed location is overwritten,
   * which also clears legacy spellings (`Spec.Networks`, `HealthCheck`).
   */
  readonly patch: readonly Location[];
  readonly equals?: (desired: unknown, observed: unknown) => boolean;
  readonly recreate?: boolean;
}

const CS = ['TaskTemplate', 'ContainerSpec'] as const;
const TT = ['TaskTemplate'] as const;

function field(
  path: string,
  at: Location,
  normalise: (raw: unknown) => unknown,
  extra: Partial<Omit<ServiceField, 'path' | 'at' | 'read'>> = {},
): ServiceField {
  return { path, at, read: (spec) => normalise(getIn(spec, at)), patch: [at], ...extra };
}

/**
 * The members of an update or rollback policy. A policy that is absent entirely gets all of
 * Swarm's defaults, but a present policy without `Parallelism` means 0, "all tasks at once" (the
 * engine omits a zero), so parallelism is read against the policy around it.
 */
function policyFields(manifestName: string, engineName: 'UpdateConfig' | 'RollbackConfig'): ServiceField[] {
  const group = { patch: [[engineName]] };
  const d = SWARM_UPDATE_DEFAULTS;
  // A zero duration is no value at all: the engine omits it, and swarmkit stores a zero Monitor as
  // unset (its default), so `monitor: 0s` must read like a policy that leaves Monitor out.
  const member = (name: string, fallback: string | number): ServiceField =>
    field(
      `spec.${manifestName}.${name.charAt(0).toLowerCase()}${name.slice(1)}`,
      [engineName, name],
      (v) => unlessDefault(typeof v === 'string' ? nonEmptyString(v) : positiveNumber(v), fallback),
      group,
    );
  return [
    {
      path: `spec.${manifestName}.parallelism`,
      at: [engineName, 'Parallelism'],
      read: (spec) => {
        const policy = asRecord(getIn(spec, [engineName]));
        return policy === undefined
          ? undefined
          : unlessDefault(asNumber(policy.Parallelism) ?? 0, d.Parallelism);
      },
      ...group,
    },
    member('Delay', d.Delay),
    member('FailureAction', d.FailureAction),
    member('Monitor', d.Monitor),
    field(
      `spec.${manifestName}.maxFailureRatio`,
      [engineName, 'MaxFailureRatio'],
      (v) => unlessDefault(float32(v), d.MaxFailureRatio),
      group,
    ),
    member('Order', d.Order),
  ];
}

const restartGroup = { patch: [[...TT, 'RestartPolicy']] };

const SERVICE_FIELDS: readonly ServiceField[] = [
  field('spec.image', [...CS, 'Image'], asString, {
    equals: (d, o) => (typeof d === 'string' && typeof o === 'string' ? imagesEqual(d, o) : d === o),
  }),
  field('spec.entrypoint', [...CS, 'Command'], stringList),
  field('spec.command', [...CS, 'Args'], stringList),
  field('spec.workingDir', [...CS, 'Dir'], nonEmptyString),
  field('spec.user', [...CS, 'User'], nonEmptyString),
  field('spec.hostname', [...CS, 'Hostname'], nonEmptyString),
  field('spec.env', [...CS, 'Env'], (v) => envList(v)),
  field('spec.containerLabels', [...CS, 'Labels'], stringMap),
  field('spec.mounts', [...CS, 'Mounts'], mountSet),
  field('spec.configs', [...CS, 'Configs'], (v) => payloadRefSet(v, 'Config')),
  field('spec.secrets', [...CS, 'Secrets'], (v) => payloadRefSet(v, 'Secret')),
  {
    path: 'spec.healthcheck',
    at: [...CS, 'Healthcheck'],
    read: (spec) => healthcheck(getIn(spec, [...CS, 'Healthcheck']) ?? getIn(spec, [...CS, 'HealthCheck'])),
    patch: [
      [...CS, 'Healthcheck'],
      [...CS, 'HealthCheck'],
    ],
  },
  field('spec.capAdd', [...CS, 'CapabilityAdd'], capabilitySet),
  field('spec.capDrop', [...CS, 'CapabilityDrop'], capabilitySet),
  field('spec.stopGracePeriod', [...CS, 'StopGracePeriod'], (v) =>
    unlessDefault(asNumber(v), SWARM_STOP_GRACE_PERIOD),
  ),
  field('spec.stopSignal', [...CS, 'StopSignal'], nonEmptyString),
  field('spec.resources.limits.cpus', [...TT, 'Resources', 'Limits', 'NanoCPUs'], positiveNumber),
  field('spec.resources.limits.memory', [...TT, 'Resources', 'Limits', 'MemoryBytes'], positiveNumber),
  field('spec.resources.limits.pids', [...TT, 'Resources', 'Limits', 'Pids'], positiveNumber),
  field('spec.resources.reservations.cpus', [...TT, 'Resources', 'Reservations', 'NanoCPUs'], positiveNumber),
  field(
    'spec.resources.reservations.memory',
    [...TT, 'Resources', 'Reservations', 'MemoryBytes'],
    positiveNumber,
  ),
  field(
    'spec.restartPolicy.condition',
    [...TT, 'RestartPolicy', 'Condition'],
    (v) => unlessDefault(nonEmptyString(v), SWARM_RESTART_DEFAULTS.Condition),
    restartGroup,
  ),
  field(
    'spec.restartPolicy.delay',
    [...TT, 'RestartPolicy', 'Delay'],
    (v) => unlessDefault(asNumber(v), SWARM_RESTART_DEFAULTS.Delay),
    restartGroup,
  ),
  field(
    'spec.restartPolicy.maxAttempts',
    [...TT, 'RestartPolicy', 'MaxAttempts'],
    (v) => unlessDefault(asNumber(v), SWARM_RESTART_DEFAULTS.MaxAttempts),
    restartGroup,
  ),
  field(
    'spec.restartPolicy.window',
    [...TT, 'RestartPolicy', 'Window'],
    (v) => unlessDefault(asNumber(v), SWARM_RESTART_DEFAULTS.Window),
    restartGroup,
  ),
  field('spec.placement.constraints', [...TT, 'Placement', 'Constraints'], (v) =>
    stringSet(v, constraintText),
  ),
  // Order matters for preferences: each one splits the nodes the previous one chose.
  field('spec.placement.preferences', [...TT, 'Placement', 'Preferences'], (v) =>
    stringList(asArray(v).map((p) => getIn(p, ['Spread', 'SpreadDescriptor']))),
  ),
  field('spec.placement.maxReplicas', [...TT, 'Placement', 'MaxReplicas'], positiveNumber),
  {
    path: 'spec.networks',
    at: [...TT, 'Networks'],
    read: (spec, context) =>
      attachments(getIn(spec, [...TT, 'Networks']) ?? getIn(spec, ['Networks']), context),
    patch: [[...TT, 'Networks'], ['Networks']],
  },
  { path: 'spec.mode', at: ['Mode'], read: (spec) => modeOf(spec), patch: [['Mode']], recreate: true },
  {
    path: 'spec.replicas',
    at: ['Mode', 'Replicated', 'Replicas'],
    read: (spec) => replicasOf(spec),
    patch: [['Mode', 'Replicated', 'Replicas']],
  },
  ...policyFields('updateConfig', 'UpdateConfig'),
  ...policyFields('rollbackConfig', 'RollbackConfig'),
  field('spec.endpointMode', ['EndpointSpec', 'Mode'], (v) =>
    unlessDefault(nonEmptyString(v), SWARM_ENDPOINT_MODE),
  ),
  field('spec.ports', ['EndpointSpec', 'Ports'], portSet),
];

function attachments(value: unknown, context: ReadContext): JsonRecord[] | undefined {
  return sortedData(
    asArray(value).flatMap((raw) => {
      const target = asString(asRecord(raw)?.Target);
      if (target === undefined) return [];
      const aliases = stringSet(asRecord(raw)?.Aliases);
      return [{ name: context.networkNames.get(target) ?? target, ...optional('aliases', aliases) }];
    }),
  );
}

/** The API reads a missing mode as replicated. */
function modeOf(spec: unknown): string {
  const mode = asRecord(getIn(spec, ['Mode']));
  if (mode?.Global !== undefined) return 'global';
  if (mode?.ReplicatedJob !== undefined) return 'replicated-job';
  if (mode?.GlobalJob !== undefined) return 'global-job';
  return 'replicated';
}

/** The API reads a replicated service without a count as one replica. */
function replicasOf(spec: unknown): number | undefined {
  if (modeOf(spec) !== 'replicated') return undefined;
  return asNumber(getIn(spec, ['Mode', 'Replicated', 'Replicas'])) ?? 1;
}

function portSet(value: unknown): JsonRecord[] | undefined {
  return sortedData(
    asArray(value).flatMap((raw) => {
      const port = asRecord(raw);
      const target = asNumber(port?.TargetPort);
      if (!port || target === undefined) return [];
      return [
        {
          protocol: nonEmptyString(port.Protocol) ?? DEFAULT_PROTOCOL,
          target,
          ...optional('published', positiveNumber(port.PublishedPort)),
          mode: nonEmptyString(port.PublishMode) ?? SWARM_PUBLISH_MODE,
        },
      ];
    }),
  );
}

function readContext(options: ServiceDiffOptions): ReadContext {
  const names = new Map<string, string>();
  for (const [name, id] of options.networks ?? []) names.set(id, name);
  return { networkNames: names };
}

/**
 * Field and label drift between the spec swarmkeeper would send and the one Swarm holds.
 * `desired` is `serviceSpecFor`'s output; `observed` is `Service.Spec` from an inspect.
 */
export function diffService(
  desired: ServiceSpec,
  observed: ServiceSpec,
  options: ServiceDiffOptions = {},
): DiffResult {
  const context = readContext(options);
  const rules: FieldRule<ServiceSpec, ServiceSpec>[] = SERVICE_FIELDS.map((f) => ({
    path: f.path,
    desired: (spec) => f.read(spec, context),
    observed: (spec) => f.read(spec, context),
    ...optional('equals', f.equals),
    ...optional('recreate', f.recreate),
  }));
  const fields = compareFields(rules, desired, observed, options.ignoreFields ?? []);
  return toDiffResult(fields, diffLabels(desired.Labels, observed.Labels));
}

/**
 * The body of a ServiceUpdate that repairs `diff`: the observed spec, with each drifted field
 * replaced by the desired value and the desired labels merged in. Starting from what Swarm holds
 * rather than from the translation keeps everything that already compares equal byte-for-byte
 * as it is: a pinned `@sha256:` digest, env order, fields swarmkeeper does not manage, and fields
 * the manifest ignores. Any change there would roll every task for nothing.
 */
export function serviceUpdateBody(
  observed: ServiceSpec,
  desired: ServiceSpec,
  diff: DiffResult,
  ignoreFields: readonly string[] = [],
): ServiceSpec {
  const body = cloneJson(observed) as JsonRecord;
  const drifted = new Set(diff.fields.map((entry) => entry.path));
  for (const f of SERVICE_FIELDS) {
    if (!drifted.has(f.path)) continue;
    for (const location of f.patch) setIn(body, location, cloneJson(getIn(desired, location)));
  }
  // A drifted policy replaced as a whole may have carried a member the manifest ignores: restore it.
  for (const f of SERVICE_FIELDS) {
    if (isIgnored(f.path, ignoreFields)) setIn(body, f.at, cloneJson(getIn(observed, f.at)));
  }
  if (diff.labels.length > 0) {
    const labels = { ...(isRecord(body.Labels) ? body.Labels : {}), ...desired.Labels };
    body.Labels = labels;
  }
  return body;
}

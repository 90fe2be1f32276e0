/**
 * Container resource → create options, and the diff against `docker container inspect`.
 * A container is immutable in everything swarmkeeper sets except its running state, so any other
 * drift is repaired by recreating it.
 */
import type { ContainerCreateOptions, ContainerInspectInfo, EndpointSettings } from 'dockerode';
import type { ResourceOf } from '../resources/resource.js';
import { parseNanoCpus } from '../resources/units.js';
import { attachmentName, type ReconcileContext } from './context.js';
import { DEFAULT_CONTAINER_RESTART, DEFAULT_CONTAINER_STATE, DEFAULT_PROTOCOL } from './defaults.js';
import {
  compareFields,
  diffLabels,
  toDiffResult,
  type DiffOptions,
  type DiffResult,
  type FieldRule,
} from './diff.js';
import { imagesEqual } from './image.js';
import {
  asArray,
  asRecord,
  capabilitySet,
  envList,
  envNames,
  healthcheck,
  isRecord,
  mountSet,
  nonEmptyString,
  optional,
  positiveNumber,
  sortedData,
  stringList,
  stringMap,
  unlessDefault,
  type JsonRecord,
} from './normalise.js';
import { ownedLabels } from './ownership.js';
import { bytes, capabilities, engineMount, envEntries, healthConfig } from './workload.js';

export type ContainerState = 'running' | 'stopped';

export interface NetworkConnection {
  readonly network: string;
  readonly aliases?: readonly string[];
}

/** Everything needed to bring a Container into being, and the desired side of its diff. */
export interface ContainerBlueprint {
  /** For `POST /containers/create`; `name` is the resource name. Joins only the first network. */
  readonly create: ContainerCreateOptions;
  /**
   * The other networks, to connect after create and before start: engines before API 1.44 (this
   * one speaks 1.41) refuse more than one endpoint at create.
   */
  readonly connect: readonly NetworkConnection[];
  readonly state: ContainerState;
  /** The labels swarmkeeper owns: managed, spec-hash and `metadata.labels`. */
  readonly labels: Readonly<Record<string, string>>;
  /** `spec.containerLabels`, kept apart so their drift is reported as a spec field. */
  readonly containerLabels?: Readonly<Record<string, string>>;
}

/**
 * The create options of a Container's blueprint: what `POST /containers/create` takes. It joins
 * only the first network; see `containerBlueprintFor` for the rest and for the defaults.
 */
export function containerCreateOptionsFor(
  resource: ResourceOf<'Container'>,
  context: ReconcileContext,
): ContainerCreateOptions {
  return containerBlueprintFor(resource, context).create;
}

/**
 * Everything needed to create a Container and to diff it. Defaults: `restart` no, `state`
 * running (see defaults.ts); without networks, the engine's default bridge. Labels are `containerLabels`, `metadata.labels`
 * and swarmkeeper's own, all on the one label set a container has.
 *
 * `context` is taken for symmetry with services and unused: container network attachments are by
 * name, which the engine resolves itself, and planning has already waited for missing networks.
 */
export function containerBlueprintFor(
  resource: ResourceOf<'Container'>,
  _context: ReconcileContext,
): ContainerBlueprint {
  const spec = resource.spec;
  const labels = ownedLabels(resource);
  const attachments = (spec.networks ?? []).map((a) => ({
    network: attachmentName(a),
    aliases: typeof a === 'string' ? undefined : a.aliases,
  }));
  const [first, ...rest] = attachments;

  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const port of spec.ports ?? []) {
    const key = `${port.target}/${port.protocol ?? DEFAULT_PROTOCOL}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({
      HostIp: port.hostIp ?? '',
      HostPort: port.published === undefined ? '' : String(port.published),
    });
  }
  const limits = spec.resources?.limits;
  const endpoints: Record<string, EndpointSettings> | undefined =
    first === undefined
      ? undefined
      : { [first.network]: first.aliases?.length ? { Aliases: [...first.aliases] } : {} };

  const create: ContainerCreateOptions = {
    name: resource.metadata.name,
    Image: spec.image,
    ...optional('Entrypoint', spec.entrypoint?.length ? [...spec.entrypoint] : undefined),
    ...optional('Cmd', spec.command?.length ? [...spec.command] : undefined),
    ...optional('WorkingDir', spec.workingDir),
    ...optional('User', spec.user),
    ...optional('Hostname', spec.hostname),
    ...optional('Env', envEntries(spec.env)),
    Labels: { ...spec.containerLabels, ...labels },
    ...optional('ExposedPorts', Object.keys(exposed).length > 0 ? exposed : undefined),
    ...optional('Healthcheck', healthConfig(spec.healthcheck)),
    HostConfig: {
      ...optional('CapAdd', capabilities(spec.capAdd)),
      ...optional('CapDrop', capabilities(spec.capDrop)),
      ...optional('PortBindings', Object.keys(bindings).length > 0 ? bindings : undefined),
      ...optional('Mounts', spec.mounts?.length ? spec.mounts.map(engineMount) : undefined),
      ...optional(
        'RestartPolicy',
        spec.restart === undefined ? undefined : { Name: spec.restart, MaximumRetryCount: 0 },
      ),
      ...optional('NetworkMode', first?.network),
      ...optional('Memory', bytes(limits?.memory)),
      ...optional('NanoCpus', limits?.cpus === undefined ? undefined : parseNanoCpus(limits.cpus)),
      ...optional('PidsLimit', limits?.pids),
    },
    ...optional('NetworkingConfig', endpoints === undefined ? undefined : { EndpointsConfig: endpoints }),
  };
  return {
    create,
    connect: rest.map((a) => ({
      network: a.network,
      ...optional('aliases', a.aliases?.length ? a.aliases : undefined),
    })),
    state: spec.state ?? DEFAULT_CONTAINER_STATE,
    labels,
    ...optional('containerLabels', spec.containerLabels),
  };
}

/** Port bindings as compared: one entry per host binding. Docker writes an unset host IP as `""`. */
function portSet(bindings: unknown): JsonRecord[] | undefined {
  const record = asRecord(bindings) ?? {};
  return sortedData(
    Object.entries(record).flatMap(([key, list]) => {
      const [target = '', protocol = DEFAULT_PROTOCOL] = key.split('/');
      return asArray(list).map((raw) => {
        const binding = asRecord(raw);
        const hostIp = nonEmptyString(binding?.HostIp);
        const published = Number(nonEmptyString(binding?.HostPort) ?? 0);
        return {
          target: Number(target),
          protocol,
          ...optional('published', published > 0 ? published : undefined),
          ...optional('hostIp', hostIp === '0.0.0.0' ? undefined : hostIp),
        };
      });
    }),
  );
}

/** `-v name:/path[:opts]` binds as Mount objects, so a container made by `docker run -v` compares too. */
function bindsAsMounts(binds: unknown): JsonRecord[] {
  return (stringList(binds) ?? []).flatMap((bind) => {
    const [source = '', target, opts = ''] = bind.split(':');
    if (target === undefined) return [];
    const flags = opts.split(',');
    const propagation = flags.find((f) => /^r?(private|shared|slave)$/.test(f));
    return [
      {
        Type: source.startsWith('/') ? 'bind' : 'volume',
        Source: source,
        Target: target,
        ...optional('ReadOnly', flags.includes('ro') ? true : undefined),
        ...optional('BindOptions', propagation === undefined ? undefined : { Propagation: propagation }),
      },
    ];
  });
}

/** The network mode `default` is the default bridge, and inspect names it `bridge`. */
const DEFAULT_NETWORK_MODE = 'default';
const DEFAULT_BRIDGE = 'bridge';

function desiredNetworks(blueprint: ContainerBlueprint): NetworkConnection[] {
  const first = blueprint.create.HostConfig?.NetworkMode;
  const firstAliases =
    first === undefined ? undefined : blueprint.create.NetworkingConfig?.EndpointsConfig?.[first]?.Aliases;
  const all: NetworkConnection[] = [
    ...(first === undefined || first === DEFAULT_NETWORK_MODE
      ? [{ network: DEFAULT_BRIDGE, ...optional('aliases', firstAliases) }]
      : [{ network: first, ...optional('aliases', firstAliases) }]),
    ...blueprint.connect,
  ];
  return all;
}

/** What the container is attached to, as `{name, aliases?}` sorted. */
function networkView(connections: readonly NetworkConnection[]): JsonRecord[] | undefined {
  return sortedData(
    connections.map((c) => ({
      name: c.network,
      ...optional('aliases', c.aliases?.length ? [...new Set(c.aliases)].sort() : undefined),
    })),
  );
}

/**
 * Container drift. The engine merges the image's env, labels, command and health check into the
 * container's, so for those only what the manifest sets is compared (the spec-hash label, checked
 * with the labels, catches a setting removed from the manifest). Network aliases are compared the
 * same way because Docker adds the container's short ID as an alias of its own.
 */
export function diffContainer(
  desired: ContainerBlueprint,
  observed: ContainerInspectInfo,
  options: DiffOptions = {},
): DiffResult {
  type Rule = FieldRule<ContainerBlueprint, ContainerInspectInfo>;
  const create = desired.create;
  // A label both in containerLabels and in metadata.labels is created with the metadata value (which
  // wins, as swarmkeeper's own do): it is compared with the labels, not here.
  const containerLabels = Object.fromEntries(
    Object.entries(desired.containerLabels ?? {}).filter(([key]) => !Object.hasOwn(desired.labels, key)),
  );
  const wantedEnv = envNames(create.Env ?? []);
  const wantedNetworks = desiredNetworks(desired);
  const host = (o: ContainerInspectInfo): JsonRecord => (isRecord(o.HostConfig) ? o.HostConfig : {});
  const immutable: Rule[] = [
    {
      path: 'spec.image',
      desired: (d) => d.create.Image,
      observed: (o) => o.Config.Image,
      equals: (d, o) => (typeof d === 'string' && typeof o === 'string' ? imagesEqual(d, o) : d === o),
    },
    {
      path: 'spec.entrypoint',
      when: (d) => d.create.Entrypoint !== undefined,
      desired: (d) => stringList(d.create.Entrypoint),
      observed: (o) => stringList(o.Config.Entrypoint),
    },
    {
      path: 'spec.command',
      when: (d) => d.create.Cmd !== undefined,
      desired: (d) => stringList(d.create.Cmd),
      observed: (o) => stringList(o.Config.Cmd),
    },
    {
      path: 'spec.workingDir',
      when: (d) => d.create.WorkingDir !== undefined,
      desired: (d) => d.create.WorkingDir,
      observed: (o) => nonEmptyString(o.Config.WorkingDir),
    },
    {
      path: 'spec.user',
      when: (d) => d.create.User !== undefined,
      desired: (d) => d.create.User,
      observed: (o) => nonEmptyString(o.Config.User),
    },
    {
      path: 'spec.hostname',
      when: (d) => d.create.Hostname !== undefined,
      desired: (d) => d.create.Hostname,
      observed: (o) => nonEmptyString(o.Config.Hostname),
    },
    {
      path: 'spec.env',
      when: (d) => d.create.Env !== undefined,
      desired: (d) => envList(d.create.Env),
      observed: (o) => envList(o.Config.Env, wantedEnv),
    },
    {
      path: 'spec.containerLabels',
      when: (d) => d.containerLabels !== undefined,
      desired: () => stringMap(containerLabels),
      observed: (o) =>
        stringMap(Object.fromEntries(Object.keys(containerLabels).map((k) => [k, o.Config.Labels?.[k]]))),
    },
    {
      path: 'spec.ports',
      desired: (d) => portSet(d.create.HostConfig?.PortBindings),
      observed: (o) => portSet(host(o).PortBindings),
    },
    {
      path: 'spec.mounts',
      desired: (d) => mountSet(d.create.HostConfig?.Mounts),
      observed: (o) => mountSet([...asArray(host(o).Mounts), ...bindsAsMounts(host(o).Binds)]),
    },
    {
      path: 'spec.capAdd',
      desired: (d) => capabilitySet(d.create.HostConfig?.CapAdd),
      observed: (o) => capabilitySet(host(o).CapAdd),
    },
    {
      path: 'spec.capDrop',
      desired: (d) => capabilitySet(d.create.HostConfig?.CapDrop),
      observed: (o) => capabilitySet(host(o).CapDrop),
    },
    {
      path: 'spec.restart',
      desired: (d) => unlessDefault(d.create.HostConfig?.RestartPolicy?.Name, DEFAULT_CONTAINER_RESTART),
      observed: (o) =>
        unlessDefault(nonEmptyString(asRecord(host(o).RestartPolicy)?.Name), DEFAULT_CONTAINER_RESTART),
    },
    {
      path: 'spec.networks',
      desired: () => networkView(wantedNetworks),
      observed: (o) => {
        const attached = asRecord(o.NetworkSettings.Networks) ?? {};
        return networkView(
          Object.entries(attached).map(([name, settings]) => {
            const wanted = wantedNetworks.find((w) => w.network === name)?.aliases ?? [];
            const have = new Set(stringList(asRecord(settings)?.Aliases) ?? []);
            return { network: name, aliases: wanted.filter((a) => have.has(a)) };
          }),
        );
      },
    },
    {
      path: 'spec.resources.limits.cpus',
      desired: (d) => positiveNumber(d.create.HostConfig?.NanoCpus),
      observed: (o) => positiveNumber(host(o).NanoCpus),
    },
    {
      path: 'spec.resources.limits.memory',
      desired: (d) => positiveNumber(d.create.HostConfig?.Memory),
      observed: (o) => positiveNumber(host(o).Memory),
    },
    {
      path: 'spec.resources.limits.pids',
      desired: (d) => positiveNumber(d.create.HostConfig?.PidsLimit),
      // The engine writes unlimited as null, 0 or -1.
      observed: (o) => {
        const pids = positiveNumber(host(o).PidsLimit);
        return pids !== undefined && pids > 0 ? pids : undefined;
      },
    },
    {
      path: 'spec.healthcheck',
      when: (d) => d.create.Healthcheck !== undefined,
      desired: (d) => healthcheck(d.create.Healthcheck),
      observed: (o) => healthcheck(asRecord(o.Config)?.Healthcheck),
    },
  ];
  const rules: Rule[] = [
    ...immutable.map((rule): Rule => ({ ...rule, recreate: true })),
    { path: 'spec.state', desired: (d) => d.state, observed: (o) => observedState(o) },
  ];
  const fields = compareFields(rules, desired, observed, options.ignoreFields ?? []);
  return toDiffResult(fields, diffLabels(desired.labels, observed.Config.Labels));
}

/** The container's state as swarmkeeper names it. */
export function observedState(observed: ContainerInspectInfo): ContainerState {
  return observed.State.Running ? 'running' : 'stopped';
}

/** Service resource → Engine API ServiceSpec, for create and update calls and as the diff's desired side. */
import type {
  ConfigReference,
  ContainerSpec,
  ContainerTaskSpec,
  EndpointSpec,
  HealthConfig,
  NetworkAttachmentConfig,
  PortConfig,
  SecretReference,
  ServiceMode,
  ServiceSpec,
  UpdateConfig,
} from 'dockerode';
import type { ServiceSpec as DesiredServiceSpec } from '../resources/kinds/service.js';
import type { ResourceOf } from '../resources/resource.js';
import { parseNanoCpus } from '../resources/units.js';
import {
  attachmentName,
  MissingDependencyError,
  type DependencyRef,
  type RealisedPayload,
  type ReconcileContext,
} from './context.js';
import {
  DEFAULT_PAYLOAD_GID,
  DEFAULT_PAYLOAD_MODE,
  DEFAULT_PAYLOAD_UID,
  DEFAULT_PROTOCOL,
  DEFAULT_REPLICAS,
  SECRETS_DIR,
  SWARM_PUBLISH_MODE,
  SWARM_UPDATE_DEFAULTS,
} from './defaults.js';
import { compact, optional } from './normalise.js';
import { ownedLabels } from './ownership.js';
import { bytes, capabilities, durationNanos, engineMount, envEntries, healthConfig } from './workload.js';

/**
 * dockerode spells the health check `HealthCheck`; the engine writes `Healthcheck` and, Go's JSON
 * decoding being case-insensitive, reads either. swarmkeeper sends the engine's spelling so a
 * created spec and an inspected one have the same shape.
 */
export type EngineContainerSpec = ContainerSpec & { Healthcheck?: HealthConfig | undefined };

type PayloadRef = NonNullable<DesiredServiceSpec['configs']>[number];
type UpdatePolicy = NonNullable<DesiredServiceSpec['updateConfig']>;

/**
 * The Engine API ServiceSpec for a Service resource.
 *
 * Defaults swarmkeeper applies: `mode` replicated, `replicas` 1 (see defaults.ts); an update or
 * rollback policy that is given but leaves `parallelism`/`order` out gets Swarm's 1/stop-first,
 * because the API would otherwise read a missing parallelism as 0, "all tasks at once".
 *
 * Controller bookkeeping (`io.swarmkeeper.managed`, `io.swarmkeeper.spec-hash`) and
 * `metadata.labels` go on ServiceSpec.Labels only: labels on the ContainerSpec restart every task
 * when they change, so it carries `containerLabels` and nothing else.
 *
 * @throws MissingDependencyError when a referenced Config or Secret has no realised object in
 *   `context`; `missingDependencies` lets a planner check first.
 */
export function serviceSpecFor(resource: ResourceOf<'Service'>, context: ReconcileContext): ServiceSpec {
  const spec = resource.spec;
  const missing: DependencyRef[] = [];
  const configs = (spec.configs ?? []).map((ref): ConfigReference | undefined => {
    const realised = context.realisedConfigs.get(ref.source);
    if (realised === undefined) missing.push(`Config/${ref.source}`);
    else
      return { File: payloadFile(ref, `/${ref.source}`), ConfigID: realised.id, ConfigName: realised.name };
    return undefined;
  });
  const secrets = (spec.secrets ?? []).map((ref): SecretReference | undefined => {
    const realised: RealisedPayload | undefined = context.realisedSecrets.get(ref.source);
    if (realised === undefined) missing.push(`Secret/${ref.source}`);
    else
      return {
        File: payloadFile(ref, `${SECRETS_DIR}${ref.source}`),
        SecretID: realised.id,
        SecretName: realised.name,
      };
    return undefined;
  });
  if (missing.length > 0) throw new MissingDependencyError(missing);

  const containerSpec: EngineContainerSpec = {
    Image: spec.image,
    ...optional('Labels', nonEmpty(spec.containerLabels)),
    ...optional('Command', nonEmptyList(spec.entrypoint)),
    ...optional('Args', nonEmptyList(spec.command)),
    ...optional('Hostname', spec.hostname),
    ...optional('Env', envEntries(spec.env)),
    ...optional('Dir', spec.workingDir),
    ...optional('User', spec.user),
    ...optional('Mounts', nonEmptyList(spec.mounts?.map(engineMount))),
    ...optional('StopSignal', spec.stopSignal),
    ...optional('StopGracePeriod', durationNanos(spec.stopGracePeriod)),
    ...optional('Healthcheck', healthConfig(spec.healthcheck)),
    ...optional('Configs', nonEmptyList(configs.filter((c) => c !== undefined))),
    ...optional('Secrets', nonEmptyList(secrets.filter((s) => s !== undefined))),
    ...optional('CapabilityAdd', capabilities(spec.capAdd)),
    ...optional('CapabilityDrop', capabilities(spec.capDrop)),
  };

  const limits = spec.resources?.limits;
  const reservations = spec.resources?.reservations;
  const resources = compact({
    Limits: compact({
      NanoCPUs: limits?.cpus === undefined ? undefined : parseNanoCpus(limits.cpus),
      MemoryBytes: bytes(limits?.memory),
      Pids: limits?.pids,
    }),
    Reservations: compact({
      NanoCPUs: reservations?.cpus === undefined ? undefined : parseNanoCpus(reservations.cpus),
      MemoryBytes: bytes(reservations?.memory),
    }),
  });
  const restart = spec.restartPolicy;
  const restartPolicy =
    restart === undefined
      ? undefined
      : compact({
          Condition: restart.condition,
          Delay: durationNanos(restart.delay),
          MaxAttempts: restart.maxAttempts,
          Window: durationNanos(restart.window),
        });
  const placement = compact({
    Constraints: nonEmptyList(spec.placement?.constraints),
    Preferences: nonEmptyList(
      spec.placement?.preferences?.map((p) => ({ Spread: { SpreadDescriptor: p.spread } })),
    ),
    MaxReplicas: spec.placement?.maxReplicas,
  });
  const networks = nonEmptyList(
    spec.networks?.map((attachment): NetworkAttachmentConfig => {
      const name = attachmentName(attachment);
      const aliases = typeof attachment === 'string' ? undefined : nonEmptyList(attachment.aliases);
      return { Target: context.networks.get(name) ?? name, ...optional('Aliases', aliases) };
    }),
  );
  const taskTemplate: ContainerTaskSpec = {
    ContainerSpec: containerSpec,
    ...optional('Resources', resources),
    ...optional('RestartPolicy', restartPolicy),
    ...optional('Placement', placement),
    ...optional('Networks', networks),
  };

  const mode: ServiceMode =
    spec.mode === 'global' ? { Global: {} } : { Replicated: { Replicas: spec.replicas ?? DEFAULT_REPLICAS } };
  const ports = nonEmptyList(
    spec.ports?.map((port): PortConfig => ({
      Protocol: port.protocol ?? DEFAULT_PROTOCOL,
      TargetPort: port.target,
      ...optional('PublishedPort', port.published),
      PublishMode: port.mode ?? SWARM_PUBLISH_MODE,
    })),
  );
  const endpointSpec: EndpointSpec | undefined = compact({ Mode: spec.endpointMode, Ports: ports });

  return {
    Name: resource.metadata.name,
    Labels: ownedLabels(resource),
    TaskTemplate: taskTemplate,
    Mode: mode,
    ...optional('UpdateConfig', updateConfig(spec.updateConfig)),
    ...optional('RollbackConfig', updateConfig(spec.rollbackConfig)),
    ...optional('EndpointSpec', endpointSpec),
  };
}

function payloadFile(
  ref: PayloadRef,
  defaultTarget: string,
): { Name: string; UID: string; GID: string; Mode: number } {
  return {
    Name: ref.target ?? defaultTarget,
    UID: ref.uid ?? DEFAULT_PAYLOAD_UID,
    GID: ref.gid ?? DEFAULT_PAYLOAD_GID,
    Mode: ref.mode === undefined ? DEFAULT_PAYLOAD_MODE : Number.parseInt(ref.mode, 8),
  };
}

function updateConfig(policy: UpdatePolicy | undefined): UpdateConfig | undefined {
  if (policy === undefined) return undefined;
  return {
    Parallelism: policy.parallelism ?? SWARM_UPDATE_DEFAULTS.Parallelism,
    ...optional('Delay', durationNanos(policy.delay)),
    ...optional('FailureAction', policy.failureAction),
    ...optional('Monitor', durationNanos(policy.monitor)),
    ...optional('MaxFailureRatio', policy.maxFailureRatio),
    Order: policy.order ?? SWARM_UPDATE_DEFAULTS.Order,
  };
}

function nonEmptyList<T>(list: readonly T[] | undefined): T[] | undefined {
  return list === undefined || list.length === 0 ? undefined : [...list];
}

function nonEmpty(map: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined {
  return map === undefined || Object.keys(map).length === 0 ? undefined : { ...map };
}

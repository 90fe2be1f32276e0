/**
 * Plans one resource against the observed Swarm: finds the object under the resource's name,
 * builds the context translation needs, and calls the pure planner. Shared by the controller and
 * by `swarmkeeper diff`, so both see the same drift.
 */
import type { ObservedContainerDetail, ObservedReader, ObservedSnapshot } from '../observed/reader.js';
import {
  planConfig,
  planContainer,
  planNetwork,
  planSecret,
  planService,
  planVolume,
  payloadHash,
  realisedPayloadName,
  type Action,
  type ObservedPayload,
  type ReconcileContext,
} from '../reconcile/index.js';
import { ANNOTATIONS, LABELS } from '../resources/metadata.js';
import type { Resource, ResourceOf } from '../resources/resource.js';
import { containerHealth, presenceHealth, serviceHealth, type HealthReport } from './health.js';

export interface PlannedResource {
  readonly actions: readonly Action[];
  readonly health: HealthReport;
}

/** What planning reads: a shared snapshot plus the single reads a snapshot does not carry. */
export interface ObservedView {
  readonly snapshot: ObservedSnapshot;
  readonly reader: ObservedReader;
  /** This deployment's key prefix: only older config versions carrying it are pruned. */
  readonly owner: string;
}

/** The kinds realised as Docker objects; HomeFolders and Users live on the filesystem. */
export type DockerResource = Exclude<Resource, { kind: 'HomeFolders' | 'User' }>;

export function isDockerResource(resource: Resource): resource is DockerResource {
  return resource.kind !== 'HomeFolders' && resource.kind !== 'User';
}

/**
 * The names of the config and secret objects that realise the given resources now, and the
 * network IDs, as translation needs them. A payload whose current version does not exist yet
 * is left out, so a service waits for it rather than mounting an older one.
 */
export function buildContext(snapshot: ObservedSnapshot, payloads: readonly Resource[]): ReconcileContext {
  const realisedConfigs = new Map<string, { id: string; name: string }>();
  const realisedSecrets = new Map<string, { id: string; name: string }>();
  for (const resource of payloads) {
    if (resource.kind !== 'Config' && resource.kind !== 'Secret') continue;
    if (resource.spec.data === undefined) continue;
    const current = currentPayload(
      resource,
      resource.kind === 'Config' ? snapshot.configs : snapshot.secrets,
    );
    if (!current) continue;
    (resource.kind === 'Config' ? realisedConfigs : realisedSecrets).set(resource.metadata.name, current);
  }
  const networks = new Map<string, string>();
  for (const [name, network] of snapshot.networks) networks.set(name, network.Id);
  return { realisedConfigs, realisedSecrets, networks };
}

export async function planResource(
  resource: DockerResource,
  view: ObservedView,
  context: ReconcileContext,
): Promise<PlannedResource> {
  const foreign = foreignOwner(resource, view);
  if (foreign !== undefined) {
    return {
      actions: [
        {
          type: 'conflict',
          reason:
            `${resource.kind} "${resource.metadata.name}" belongs to the swarmkeeper deployment with prefix ` +
            `"${foreign}"; set the annotation ${ANNOTATIONS.adopt}: "true" to take it over`,
        },
      ],
      health: presenceHealth(true),
    };
  }
  const { snapshot } = view;
  switch (resource.kind) {
    case 'Service': {
      const observed = snapshot.services.get(resource.metadata.name);
      const global = observed?.spec.Mode?.Global !== undefined;
      const nodeCount = global ? (await view.reader.nodes()).filter(eligibleNode).length : 0;
      return {
        actions: planService(resource, observed?.inspect, context),
        health: serviceHealth(observed, nodeCount),
      };
    }
    case 'Network': {
      const observed = snapshot.networks.get(resource.metadata.name);
      return { actions: planNetwork(resource, observed), health: presenceHealth(observed !== undefined) };
    }
    case 'Volume': {
      const observed = snapshot.volumes.get(resource.metadata.name);
      return { actions: planVolume(resource, observed), health: presenceHealth(observed !== undefined) };
    }
    case 'Config':
    case 'Secret': {
      const observed = payloadVersions(resource, snapshot, view.owner);
      const actions =
        resource.kind === 'Config' ? planConfig(resource, observed) : planSecret(resource, observed);
      const map = resource.kind === 'Config' ? snapshot.configs : snapshot.secrets;
      return { actions, health: presenceHealth(currentPayload(resource, map) !== undefined) };
    }
    case 'Container': {
      // The list entry lacks HostConfig and the full Config, so read the one container in full.
      const listed = snapshot.containers.get(resource.metadata.name);
      const observed: ObservedContainerDetail | undefined = listed
        ? await view.reader.inspectContainer(resource.metadata.name)
        : undefined;
      return {
        actions: planContainer(resource, observed, context),
        health: containerHealth(observed, resource.spec.state ?? 'running'),
      };
    }
  }
}

/** Every config or secret that is the resource's current version or an older one swarmkeeper made for it. */
function payloadVersions(
  resource: ResourceOf<'Config'> | ResourceOf<'Secret'>,
  snapshot: ObservedSnapshot,
  owner: string,
): ObservedPayload[] {
  const current =
    resource.spec.data === undefined
      ? undefined
      : realisedPayloadName(resource.metadata.name, resource.spec.data);
  const all: ObservedPayload[] =
    resource.kind === 'Config' ? [...snapshot.configs.values()] : [...snapshot.secrets.values()];
  const adopted = resource.metadata.annotations?.[ANNOTATIONS.adopt] === 'true';
  return all.filter(
    (o) =>
      o.Spec?.Name === current ||
      (adopted && o.Spec?.Name === resource.metadata.name) ||
      (o.Spec?.Labels?.[LABELS.resource] === resource.metadata.name && o.Spec.Labels[LABELS.owner] === owner),
  );
}

/**
 * The object that realises a Config or Secret now: `<name>-<hash8>`, or, for a resource that
 * adopts, an object under the plain name with the same content (a config's Data; for a secret,
 * whose data the engine never returns, its spec-hash label, or none yet).
 */
function currentPayload(
  resource: ResourceOf<'Config'> | ResourceOf<'Secret'>,
  objects: ReadonlyMap<string, ObservedPayload>,
): { id: string; name: string } | undefined {
  const data = resource.spec.data;
  if (data === undefined) return undefined;
  const name = realisedPayloadName(resource.metadata.name, data);
  const realised = objects.get(name);
  if (realised) return { id: realised.ID, name };
  if (resource.metadata.annotations?.[ANNOTATIONS.adopt] !== 'true') return undefined;
  const adopted = objects.get(resource.metadata.name);
  if (!adopted) return undefined;
  const hash = payloadHash(data);
  const sameContent =
    adopted.Spec?.Data !== undefined
      ? payloadHash(Buffer.from(adopted.Spec.Data, 'base64').toString('utf8')) === hash
      : (adopted.Spec?.Labels?.[LABELS.specHash] ?? hash) === hash;
  return sameContent ? { id: adopted.ID, name: resource.metadata.name } : undefined;
}

/**
 * The owner prefix of an object another swarmkeeper deployment made under this resource's name.
 * Two deployments sharing a Swarm must not fight over one object, so that is a Conflict too.
 */
function foreignOwner(resource: DockerResource, view: ObservedView): string | undefined {
  if (resource.metadata.annotations?.[ANNOTATIONS.adopt] === 'true') return undefined;
  const { snapshot } = view;
  const name = resource.metadata.name;
  const labels: Readonly<Record<string, string>> | null | undefined =
    resource.kind === 'Service'
      ? snapshot.services.get(name)?.labels
      : resource.kind === 'Network'
        ? snapshot.networks.get(name)?.Labels
        : resource.kind === 'Volume'
          ? snapshot.volumes.get(name)?.Labels
          : resource.kind === 'Container'
            ? snapshot.containers.get(name)?.Labels
            : undefined;
  const owner = labels?.[LABELS.owner];
  return labels?.[LABELS.managed] === 'true' && owner !== undefined && owner !== view.owner
    ? owner
    : undefined;
}

function eligibleNode(node: { state: string; availability: string }): boolean {
  return node.state === 'ready' && node.availability === 'active';
}

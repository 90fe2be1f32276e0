/**
 * Plans: for one resource and what the engine holds under its name, the actions that make the
 * engine match. Pure and level-triggered: the same inputs always give the same plan, and a plan
 * carried out and observed again plans nothing (`none`).
 */
import type { ContainerInspectInfo, NetworkInspectInfo, Service, VolumeInspectInfo } from 'dockerode';
import type { DriftEntry } from '../desired/store.js';
import { LABELS } from '../resources/metadata.js';
import type { ResourceOf } from '../resources/resource.js';
import type {
  ConfigAction,
  ConflictAction,
  ContainerAction,
  CreateAction,
  NoneAction,
  UpdateAction,
  NetworkAction,
  PayloadLabelsUpdate,
  PruneAction,
  SecretAction,
  ServiceAction,
  VolumeAction,
} from './actions.js';
import { containerBlueprintFor, diffContainer } from './container.js';
import { missingDependencies, type ReconcileContext } from './context.js';
import { allDrift, hasDrift } from './diff.js';
import { diffNetwork, networkCreateOptionsFor } from './network.js';
import { adoptionRequested, ignoredFields, isManaged, ownershipConflict } from './ownership.js';
import {
  configCreateFor,
  diffPayload,
  secretCreateFor,
  type ObservedPayload,
  type PayloadResource,
} from './payload.js';
import { diffService, serviceUpdateBody } from './service-diff.js';
import { serviceSpecFor } from './service-spec.js';
import { diffVolume, volumeCreateOptionsFor } from './volume.js';

function describe(entries: readonly DriftEntry[]): string {
  return entries.map((e) => e.path).join(', ');
}

/**
 * A Service. Mode changes recreate (Swarm refuses them in place); any other drift is an update
 * built from the observed spec (see `serviceUpdateBody`), flagged `labelsOnly` when only labels
 * differ. Adopting a service that already matches is such a labels-only update.
 */
export function planService(
  resource: ResourceOf<'Service'>,
  observed: Service | undefined,
  context: ReconcileContext,
): ServiceAction[] {
  const missing = missingDependencies(resource, context);
  if (missing.length > 0) return [{ type: 'wait', missing }];
  const desired = serviceSpecFor(resource, context);
  if (observed === undefined) return [{ type: 'create', kind: 'Service', body: desired }];
  const spec = observed.Spec ?? {};
  const conflict = ownershipConflict(resource, spec.Labels);
  if (conflict !== undefined) return [{ type: 'conflict', reason: conflict }];

  const ignore = ignoredFields(resource);
  const diff = diffService(desired, spec, { ignoreFields: ignore, networks: context.networks });
  if (diff.recreate.length > 0) {
    return [
      {
        type: 'recreate',
        kind: 'Service',
        id: observed.ID,
        reason: `Swarm cannot change ${describe(diff.recreate)} of a service in place`,
        body: desired,
        drift: allDrift(diff),
      },
    ];
  }
  if (!hasDrift(diff)) return [{ type: 'none', drift: [] }];
  return [
    {
      type: 'update',
      kind: 'Service',
      id: observed.ID,
      // Inspect always carries the index; 0 makes the engine refuse the update rather than guess.
      version: observed.Version?.Index ?? 0,
      body: serviceUpdateBody(spec, desired, diff, ignore),
      labelsOnly: diff.fields.length === 0,
      drift: allDrift(diff),
    },
  ];
}

/**
 * A Network. Field drift recreates, which needs every service and container detached first:
 * the executor's job. Label drift is reported but left: Docker cannot relabel a network, and
 * recreating for a label would disconnect everything on it.
 */
export function planNetwork(
  resource: ResourceOf<'Network'>,
  observed: NetworkInspectInfo | undefined,
): NetworkAction[] {
  const desired = networkCreateOptionsFor(resource);
  if (observed === undefined) return [{ type: 'create', kind: 'Network', body: desired }];
  const conflict = ownershipConflict(resource, observed.Labels);
  if (conflict !== undefined) return [{ type: 'conflict', reason: conflict }];
  const diff = diffNetwork(desired, observed, { ignoreFields: ignoredFields(resource) });
  if (diff.recreate.length > 0) {
    return [
      {
        type: 'recreate',
        kind: 'Network',
        id: observed.Id,
        reason: `Docker cannot change ${describe(diff.recreate)} of a network in place; detach its services and containers, remove it and create it again`,
        body: desired,
        drift: allDrift(diff),
      },
    ];
  }
  return [{ type: 'none', drift: diff.labels }];
}

/**
 * A Volume. Driver or option drift recreates (the engine never changes them on an existing
 * volume); `dataLoss` says whether the data lives in the volume itself rather than behind a
 * `device` option such as an NFS export. Label drift is reported but left, as for networks.
 */
export function planVolume(
  resource: ResourceOf<'Volume'>,
  observed: VolumeInspectInfo | undefined,
): VolumeAction[] {
  const desired = volumeCreateOptionsFor(resource);
  if (observed === undefined) return [{ type: 'create', kind: 'Volume', body: desired }];
  const conflict = ownershipConflict(resource, observed.Labels);
  if (conflict !== undefined) return [{ type: 'conflict', reason: conflict }];
  const diff = diffVolume(desired, observed, { ignoreFields: ignoredFields(resource) });
  if (diff.recreate.length > 0) {
    return [
      {
        type: 'recreate',
        kind: 'Volume',
        id: observed.Name,
        reason: `Docker never changes ${describe(diff.recreate)} of an existing volume; remove it and create it again`,
        body: desired,
        drift: allDrift(diff),
        dataLoss: observed.Options?.device === undefined,
      },
    ];
  }
  return [{ type: 'none', drift: diff.labels }];
}

/**
 * A Container. Anything but its state, labels included, can only change by recreating it; the
 * spec-hash label makes that cover settings removed from the manifest, which the field diff
 * cannot see through the image's merged-in defaults. State drift alone starts or stops it.
 */
export function planContainer(
  resource: ResourceOf<'Container'>,
  observed: ContainerInspectInfo | undefined,
  context: ReconcileContext,
): ContainerAction[] {
  const missing = missingDependencies(resource, context);
  if (missing.length > 0) return [{ type: 'wait', missing }];
  const blueprint = containerBlueprintFor(resource, context);
  if (observed === undefined) return [{ type: 'create', kind: 'Container', body: blueprint }];
  const conflict = ownershipConflict(resource, observed.Config.Labels);
  if (conflict !== undefined) return [{ type: 'conflict', reason: conflict }];
  const diff = diffContainer(blueprint, observed, { ignoreFields: ignoredFields(resource) });
  // Docker cannot relabel a container. An adopted one whose settings all match keeps running
  // without swarmkeeper's labels, as adopted networks and volumes do; any field drift recreates it.
  const labelsOnlyAdoption =
    diff.recreate.length === 0 && adoptionRequested(resource) && !isManaged(observed.Config.Labels);
  const immutable = labelsOnlyAdoption ? [] : [...diff.recreate, ...diff.labels];
  if (immutable.length > 0) {
    return [
      {
        type: 'recreate',
        kind: 'Container',
        id: observed.Id,
        reason: `Docker cannot change ${describe(immutable)} of a container in place`,
        body: blueprint,
        drift: allDrift(diff),
      },
    ];
  }
  if (diff.fields.some((entry) => entry.path === 'spec.state')) {
    return [
      blueprint.state === 'running' ? { type: 'start', id: observed.Id } : { type: 'stop', id: observed.Id },
    ];
  }
  return [{ type: 'none', drift: labelsOnlyAdoption ? diff.labels : [] }];
}

/**
 * A Config. `observed` is every config that is either named like the current version or labelled
 * `io.swarmkeeper.resource=<name>`. The current version is created if missing and relabelled if
 * its labels drifted; older versions swarmkeeper made are pruned.
 */
export function planConfig(
  resource: ResourceOf<'Config'>,
  observed: readonly ObservedPayload[],
): ConfigAction[] {
  return planPayload(resource, configCreateFor(resource), observed, 'Config');
}

/** A Secret; as `planConfig`. */
export function planSecret(
  resource: ResourceOf<'Secret'>,
  observed: readonly ObservedPayload[],
): SecretAction[] {
  return planPayload(resource, secretCreateFor(resource), observed, 'Secret');
}

function planPayload<
  K extends 'Config' | 'Secret',
  B extends { Name: string; Labels?: Record<string, string> | undefined; Data?: string | undefined },
>(
  resource: PayloadResource,
  body: B,
  observed: readonly ObservedPayload[],
  kind: K,
): (CreateAction<K, B> | UpdateAction<K, PayloadLabelsUpdate> | PruneAction | NoneAction | ConflictAction)[] {
  // An adopted object under the plain resource name, with the same content, is the current version.
  const current =
    observed.find((o) => o.Spec?.Name === body.Name) ??
    (adoptionRequested(resource)
      ? observed.find(
          (o) => o.Spec?.Name === resource.metadata.name && diffPayload(body, o).fields.length === 0,
        )
      : undefined);
  const prune: PruneAction[] = observed
    .filter(
      (o) =>
        o !== current &&
        isManaged(o.Spec?.Labels) &&
        o.Spec?.Labels?.[LABELS.resource] === resource.metadata.name,
    )
    .map((o) => ({ type: 'prune', id: o.ID, name: o.Spec?.Name ?? o.ID }));
  if (current === undefined) return [{ type: 'create', kind, body }, ...prune];
  const conflict = ownershipConflict(resource, current.Spec?.Labels);
  if (conflict !== undefined) return [{ type: 'conflict', reason: conflict }];
  const diff = diffPayload(body, current);
  if (diff.fields.length > 0) {
    return [
      {
        type: 'conflict',
        reason: `${kind} ${body.Name} exists with different content; ${kind.toLowerCase()}s are immutable, remove it to let swarmkeeper create it again`,
      },
    ];
  }
  if (diff.labels.length > 0) {
    return [
      {
        type: 'update',
        kind,
        id: current.ID,
        version: current.Version?.Index ?? 0,
        body: { Name: current.Spec?.Name ?? body.Name, Labels: { ...current.Spec?.Labels, ...body.Labels } },
        labelsOnly: true,
        drift: allDrift(diff),
      },
      ...prune,
    ];
  }
  return [{ type: 'none', drift: [] }, ...prune];
}

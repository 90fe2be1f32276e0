/**
 * What translation needs to know about other objects: the realised names of configs and secrets,
 * and the IDs of networks. The caller reads them from the engine; this core never does.
 */
import type { NetworkAttachment } from '../resources/kinds/workload.js';
import type { ResourceOf } from '../resources/resource.js';
import { BUILTIN_NETWORKS } from './defaults.js';

/** The immutable Swarm object that currently realises a Config or Secret resource. */
export interface RealisedPayload {
  readonly id: string;
  /** `<resource name>-<hash8>`. */
  readonly name: string;
}

export interface ReconcileContext {
  /** Config resource name → the object a service should mount now. */
  readonly realisedConfigs: ReadonlyMap<string, RealisedPayload>;
  /** Secret resource name → the object a service should mount now. */
  readonly realisedSecrets: ReadonlyMap<string, RealisedPayload>;
  /**
   * Network name → ID for every network the engine has, managed or not. Swarm stores a
   * service's attachments by ID, so the diff needs this to read them back as names.
   */
  readonly networks: ReadonlyMap<string, string>;
}

export function emptyContext(): ReconcileContext {
  return { realisedConfigs: new Map(), realisedSecrets: new Map(), networks: new Map() };
}

/** A dependency that does not exist yet, as `Kind/name`. */
export type DependencyRef = `${'Config' | 'Secret' | 'Network'}/${string}`;

/** Thrown by a translation asked to refer to a config or secret that is not realised yet. */
export class MissingDependencyError extends Error {
  constructor(readonly missing: readonly DependencyRef[]) {
    super(`waiting for ${missing.join(', ')}`);
    this.name = 'MissingDependencyError';
  }
}

export function attachmentName(attachment: NetworkAttachment): string {
  return typeof attachment === 'string' ? attachment : attachment.name;
}

/**
 * The Networks, Configs and Secrets a Service or Container refers to that the context lacks.
 * Planning waits for them rather than sending a create the engine would reject.
 */
export function missingDependencies(
  resource: ResourceOf<'Service'> | ResourceOf<'Container'>,
  context: ReconcileContext,
): DependencyRef[] {
  const missing = new Set<DependencyRef>();
  for (const attachment of resource.spec.networks ?? []) {
    const name = attachmentName(attachment);
    const builtin = resource.kind === 'Container' && BUILTIN_NETWORKS.has(name);
    if (!builtin && !context.networks.has(name)) missing.add(`Network/${name}`);
  }
  if (resource.kind === 'Service') {
    for (const ref of resource.spec.configs ?? []) {
      if (!context.realisedConfigs.has(ref.source)) missing.add(`Config/${ref.source}`);
    }
    for (const ref of resource.spec.secrets ?? []) {
      if (!context.realisedSecrets.has(ref.source)) missing.add(`Secret/${ref.source}`);
    }
  }
  return [...missing];
}

/**
 * Who owns a Docker object, which fields a resource leaves alone, and the labels swarmkeeper
 * writes to mark its objects.
 */
import { ANNOTATIONS, LABELS } from '../resources/metadata.js';
import type { Resource } from '../resources/resource.js';
import { hashValue } from './hash.js';

/**
 * The `io.swarmkeeper.spec-hash` of a resource: the hash of its spec as stored. It tells a reader
 * which version of the manifest an object was last written from. It deliberately leaves out the
 * context (realised config names, network IDs): the field diff catches those.
 *
 * A Container's `state` is left out too: it is the one container setting that changes without
 * recreating, and a container's labels can only change by recreating it.
 */
export function specHashOf(resource: Resource): string {
  if (resource.kind === 'Container') {
    const { state: _state, ...baked } = resource.spec;
    return hashValue(baked);
  }
  return hashValue(resource.spec);
}

/**
 * The labels an object realising `resource` carries: the manifest's `metadata.labels`, then
 * swarmkeeper's own, which win (the schema already refuses user labels under `io.swarmkeeper.`).
 */
export function ownedLabels(
  resource: Resource,
  specHash: string = specHashOf(resource),
): Record<string, string> {
  return { ...resource.metadata.labels, [LABELS.managed]: 'true', [LABELS.specHash]: specHash };
}

export function isManaged(labels: Readonly<Record<string, string>> | null | undefined): boolean {
  return labels?.[LABELS.managed] === 'true';
}

export function adoptionRequested(resource: Resource): boolean {
  return resource.metadata.annotations?.[ANNOTATIONS.adopt] === 'true';
}

/**
 * Spec field names from the `swarmkeeper/ignore-fields` annotation, without a `spec.` prefix:
 * `"replicas, resources.limits"` → `['replicas', 'resources.limits']`.
 */
export function ignoredFields(resource: Resource): string[] {
  const raw = resource.metadata.annotations?.[ANNOTATIONS.ignoreFields] ?? '';
  return raw
    .split(',')
    .map((field) => field.trim().replace(/^spec\./, ''))
    .filter((field) => field !== '');
}

/** Why planning refuses to touch an observed object, or undefined when it may. */
export function ownershipConflict(
  resource: Resource,
  observedLabels: Readonly<Record<string, string>> | null | undefined,
): string | undefined {
  if (isManaged(observedLabels) || adoptionRequested(resource)) return undefined;
  return (
    `${resource.kind} "${resource.metadata.name}" exists but was not created by swarmkeeper ` +
    `(no ${LABELS.managed}=true label); set the annotation ${ANNOTATIONS.adopt}: "true" to take it over`
  );
}

/**
 * The pure reconcile core: desired resources → Engine API specs, Swarm-aware diffs against what
 * the engine reports, and per-key action plans. Nothing here talks to Docker or Redis, and
 * nothing imports a `node:` module; callers bring the observed state and carry out the plan.
 */
export * from './actions.js';
export {
  containerBlueprintFor,
  containerCreateOptionsFor,
  diffContainer,
  observedState,
  type ContainerBlueprint,
  type ContainerState,
  type NetworkConnection,
} from './container.js';
export {
  emptyContext,
  missingDependencies,
  MissingDependencyError,
  type DependencyRef,
  type RealisedPayload,
  type ReconcileContext,
} from './context.js';
export * as defaults from './defaults.js';
export { allDrift, hasDrift, isIgnored, NO_DRIFT, type DiffOptions, type DiffResult } from './diff.js';
export { base64, canonicalJson, fnv1a64, hashValue } from './hash.js';
export { imagesEqual, parseImageReference, type ImageReference } from './image.js';
export { diffNetwork, networkCreateOptionsFor } from './network.js';
export {
  adoptionRequested,
  ignoredFields,
  isManaged,
  ownedLabels,
  ownershipConflict,
  specHashOf,
} from './ownership.js';
export {
  configCreateFor,
  diffPayload,
  payloadHash,
  payloadLabels,
  realisedPayloadName,
  secretCreateFor,
  type ObservedPayload,
  type PayloadResource,
} from './payload.js';
export { planConfig, planContainer, planNetwork, planSecret, planService, planVolume } from './plan.js';
export { diffService, serviceUpdateBody, type ServiceDiffOptions } from './service-diff.js';
export { serviceSpecFor, type EngineContainerSpec } from './service-spec.js';
export { diffVolume, mountsElsewhere, volumeCreateOptionsFor } from './volume.js';

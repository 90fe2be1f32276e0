/**
 * Well-known names that several modules share: the manifest apiVersion, annotation keys that
 * change the controller's behaviour, and the labels swarmkeeper puts on the Docker objects it owns.
 */

export const API_VERSION = 'swarmkeeper/v1';

export const ANNOTATIONS = {
  /** `"true"`: take over an existing object of the same name that swarmkeeper did not create. */
  adopt: 'swarmkeeper/adopt',
  /** Comma-separated spec fields the controller leaves alone, e.g. `replicas` for someone else to scale. */
  ignoreFields: 'swarmkeeper/ignore-fields',
  /** `"true"`: the controller found this User from a spawned service; nobody registered it. */
  discovered: 'swarmkeeper/discovered',
} as const;

export const LABELS = {
  managed: 'io.swarmkeeper.managed',
  specHash: 'io.swarmkeeper.spec-hash',
  /** On realised configs and secrets: the resource name they realise (the object is `<name>-<hash8>`). */
  resource: 'io.swarmkeeper.resource',
  /**
   * The key prefix of the deployment that created the object. Several swarmkeeper deployments
   * (or test runs) can share one Swarm; each removes only objects carrying its own prefix.
   */
  owner: 'io.swarmkeeper.owner',
  /**
   * On volumes: the reclaimPolicy when the volume was created. Docker cannot relabel a volume, so
   * the controller prefers the policy of the resource it last saw and falls back to this label.
   */
  reclaimPolicy: 'io.swarmkeeper.reclaim-policy',
  /**
   * On a per-node volume check job (a global-job service): the HomeFolders it checks. Such a
   * service realises no Service resource, so orphan removal and prune leave it alone; the
   * HomeFolders reconcile removes it once a newer job finished.
   */
  volumeCheck: 'io.swarmkeeper.volume-check',
  /** On a volume check job: the hash of the volume template it checked against. */
  volumeTemplateHash: 'io.swarmkeeper.volume-template-hash',
} as const;

/** Label and annotation keys people may not set themselves: the controller owns them. */
export const RESERVED_LABEL_PREFIX = 'io.swarmkeeper.';

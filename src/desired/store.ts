/**
 * The desired-state store: what people want, as typed resources, plus the status the controller
 * writes back. `RedisDesiredStore` implements it; other modules depend on this interface only.
 */
import type { Observable } from 'rxjs';
import type { FieldIssue } from '../errors.js';
import type { Kind } from '../resources/kinds/index.js';
import type { Resource } from '../resources/resource.js';

/** One desired record as read: a typed resource, or every reason it is not one. Nothing is dropped. */
export type StoredRecord =
  | { readonly ok: true; readonly key: string; readonly resource: Resource }
  | {
      readonly ok: false;
      readonly key: string;
      /** As spelled in the key; may be an unknown kind. */
      readonly kind: string;
      readonly name: string;
      readonly issues: readonly FieldIssue[];
    };

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface ApplyResult {
  readonly kind: Kind;
  readonly name: string;
  readonly action: ApplyAction;
  /** Hash fields that were added, changed or removed (reserved metadata fields included). */
  readonly changedFields: readonly string[];
}

export interface ApplyOptions {
  /** Compute the results without writing anything. */
  readonly dryRun?: boolean;
}

/** `Retained` and `Archived` describe a deleted User whose folder was kept or moved to the archive. */
export type SyncState =
  'Synced' | 'OutOfSync' | 'Pending' | 'Invalid' | 'Conflict' | 'Error' | 'Retained' | 'Archived';
export type HealthState = 'Healthy' | 'Progressing' | 'Degraded' | 'Missing';

export interface DriftEntry {
  readonly path: string;
  readonly desired: unknown;
  readonly actual: unknown;
}

/** The controller's view of one resource, stored as a HASH beside the desired record. */
export interface ResourceStatus {
  readonly sync?: SyncState;
  readonly health?: HealthState;
  readonly message?: string;
  readonly observedHash?: string;
  /** ISO 8601. */
  readonly lastSyncedAt?: string;
  readonly lastDriftAt?: string;
  readonly lastDrift?: readonly DriftEntry[];
  /** Users: bytes the home folder uses, from the quota driver's last report. */
  readonly usedBytes?: number;
  /** Users: the folder's hard limit in bytes; 0 means no limit. */
  readonly quotaBytes?: number;
  /** HomeFolders: what the last per-node volume check found on each node (see volume-check.ts). */
  readonly nodes?: readonly NodeVolumeCheck[];
}

/** How the per-user volumes on one node compare with the HomeFolders template. */
export type NodeCheckState = 'Synced' | 'OutOfSync' | 'Failed' | 'Running' | 'Unknown';

export interface NodeVolumeCheck {
  /** The Swarm node ID. */
  readonly node: string;
  readonly hostname: string;
  readonly state: NodeCheckState;
  /** Volumes removed and created again from the template. */
  readonly replaced: readonly string[];
  /** Volumes that differ from the template but are in use: each user's session must restart. */
  readonly inUse: readonly { readonly volume: string; readonly user: string }[];
  readonly message: string;
}

/**
 * Removals held back: the desired set emptied, or lost more than half its resources in one
 * change, while managed objects exist. Cleared by `swarmkeeper prune --confirm`.
 */
export interface PruneGuard {
  /** `held` blocks removals; `confirmed` lets the controller accept the current desired set. */
  readonly state: 'held' | 'confirmed';
  readonly reason: string;
  /** ISO 8601. */
  readonly since: string;
  readonly desiredCount: number;
  readonly previousCount: number;
}

export interface DesiredChange {
  /** As spelled in the key; may be an unknown kind, which readers report as Invalid. */
  readonly kind: string;
  readonly name: string;
  readonly via: 'keyspace' | 'publish' | 'scan';
}

export interface StoreAvailability {
  readonly available: boolean;
  /** Why the connection is down, e.g. `connect ECONNREFUSED 127.0.0.1:6379` or `WRONGPASS ...`. */
  readonly reason?: string;
}

export interface WatchOptions {
  /** How often a full SCAN re-announces every record, as a safety net for lost notifications. */
  readonly rescanIntervalMs: number;
  /**
   * Called each time the subscription is live: first, and again after its connection dropped.
   * Notifications sent before are lost, so a caller that read the store earlier should read it
   * again (a Kubernetes informer relists after a broken watch for the same reason).
   */
  readonly onSubscribed?: () => void;
}

export interface DesiredStore {
  /** Every desired record under the prefix, valid or not, in kind dependency order then by name. */
  list(): Promise<StoredRecord[]>;
  get(kind: Kind, name: string): Promise<StoredRecord | undefined>;
  /** Writes a whole manifest set atomically: no reader sees part of it. Each record is replaced whole. */
  apply(resources: readonly Resource[], options?: ApplyOptions): Promise<ApplyResult[]>;
  /** True when the record existed. */
  delete(kind: Kind, name: string): Promise<boolean>;
  /**
   * Keys that may have changed: keyspace notifications where the server allows them, the
   * `<prefix>:changes` channel that every CLI write publishes to, and a periodic full SCAN.
   */
  watch(options: WatchOptions): Observable<DesiredChange>;
  readStatus(kind: Kind, name: string): Promise<ResourceStatus | undefined>;
  writeStatus(kind: Kind, name: string, status: ResourceStatus): Promise<void>;
  /** Forgets the status of a resource whose record and object are both gone. */
  clearStatus(kind: Kind, name: string): Promise<void>;
  /**
   * Many `writeStatus` (a status) and `clearStatus` (undefined) in one round trip, in order.
   * Optional: without it, callers write one at a time.
   */
  writeStatuses?(
    entries: readonly { kind: Kind; name: string; status: ResourceStatus | undefined }[],
  ): Promise<void>;
  /** Statuses of many resources in one round trip; missing ones are absent from the map (keyed `Kind/name`). */
  readStatuses(refs: readonly { kind: Kind; name: string }[]): Promise<Map<string, ResourceStatus>>;
  readGuard(): Promise<PruneGuard | undefined>;
  writeGuard(guard: PruneGuard): Promise<void>;
  clearGuard(): Promise<void>;
  /**
   * Whether the store can be reached: available once connected, not as soon as the connection
   * drops (with the reason when known), without duplicates. Optional: a store without it is taken
   * to be always reachable.
   */
  availability?(): Observable<StoreAvailability>;
  /**
   * A value that changes with every write made through the store, for a caller that keeps a copy
   * current from `watch()` to skip a full `list()` when nothing was written. Undefined when edits
   * made around the store (redis-cli) might go unnoticed, because keyspace notifications are off:
   * the caller must list then. Optional: without it, always list.
   */
  changeCounter?(): Promise<string | undefined>;
  close(): Promise<void>;
}

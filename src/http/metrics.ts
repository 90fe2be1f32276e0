/**
 * The controller's Prometheus metrics. Each `Metrics` owns its own registry rather than
 * prom-client's global one, so tests (and a process that builds several controllers) do not
 * collide on metric names. Metric updates never throw: a bad value must not fail a reconcile.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReconcileResultType } from '../controller/workqueue.js';
import type { SyncState } from '../desired/store.js';
import { KINDS, type Kind } from '../resources/kinds/index.js';

/** Every sync state, so `setResourceCounts` can write explicit zeros instead of leaving stale series. */
export const SYNC_STATES = [
  'Synced',
  'OutOfSync',
  'Pending',
  'Invalid',
  'Conflict',
  'Error',
  'Retained',
  'Archived',
] as const satisfies readonly SyncState[];

// Fails to compile when store.ts grows a sync state this list lacks.
const _everySyncStateListed: [Exclude<SyncState, (typeof SYNC_STATES)[number]>] extends [never]
  ? true
  : never = true;

/** Reconcile durations range from a cache hit (milliseconds) to a service rollout (tens of seconds). */
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export type ResourceCounts = ReadonlyMap<Kind, ReadonlyMap<SyncState, number>>;

export class Metrics {
  readonly registry = new Registry();
  private readonly reconcileTotal: Counter<'kind' | 'result'>;
  private readonly reconcileDuration: Histogram<'kind'>;
  private readonly driftTotal: Counter<'kind'>;
  private readonly queueDepth: Gauge;
  private readonly retriesTotal: Counter;
  private readonly leader: Gauge;
  private readonly resources: Gauge<'kind' | 'sync'>;
  private readonly homeUsed: Gauge<'user'>;
  private readonly homeQuota: Gauge<'user'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({
      name: 'swarmkeeper_reconcile_total',
      help: 'Reconciles run, by kind and by what the reconcile asked for next (done, requeueAfter, retry, terminal).',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'swarmkeeper_reconcile_duration_seconds',
      help: 'Time one reconcile took, by kind.',
      labelNames: ['kind'],
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.driftTotal = new Counter({
      name: 'swarmkeeper_drift_detected_total',
      help: 'Times a live object was found to differ from its desired state, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'swarmkeeper_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      registers,
    });
    this.retriesTotal = new Counter({
      name: 'swarmkeeper_workqueue_retries_total',
      help: 'Keys requeued with backoff after a failed reconcile.',
      registers,
    });
    this.leader = new Gauge({
      name: 'swarmkeeper_leader',
      help: '1 while this process is the leader that reconciles, 0 while it follows.',
      registers,
    });
    this.resources = new Gauge({
      name: 'swarmkeeper_resources',
      help: 'Desired resources, by kind and sync state.',
      labelNames: ['kind', 'sync'],
      registers,
    });
    this.homeUsed = new Gauge({
      name: 'swarmkeeper_home_folder_used_bytes',
      help: "Bytes a user's home folder uses.",
      labelNames: ['user'],
      registers,
    });
    this.homeQuota = new Gauge({
      name: 'swarmkeeper_home_folder_quota_bytes',
      help: "A user's home folder hard limit in bytes; 0 means no limit.",
      labelNames: ['user'],
      registers,
    });
    this.leader.set(0);
    this.queueDepth.set(0);
  }

  /** The Content-Type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text exposition format. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  recordReconcile(kind: Kind, result: ReconcileResultType, seconds: number): void {
    this.reconcileTotal.inc({ kind, result });
    if (Number.isFinite(seconds) && seconds >= 0) this.reconcileDuration.observe({ kind }, seconds);
  }

  recordDrift(kind: Kind): void {
    this.driftTotal.inc({ kind });
  }

  setQueueDepth(depth: number): void {
    if (Number.isFinite(depth)) this.queueDepth.set(Math.max(0, depth));
  }

  addRetries(count: number): void {
    // prom-client throws on a negative increment; a counter only goes up.
    if (Number.isFinite(count) && count > 0) this.retriesTotal.inc(count);
  }

  setLeader(isLeader: boolean): void {
    this.leader.set(isLeader ? 1 : 0);
  }

  /**
   * Replaces every `swarmkeeper_resources` series. Each kind and sync state gets a value, zero
   * when absent from `counts`, so a state that emptied reads 0 rather than its last count.
   */
  setResourceCounts(counts: ResourceCounts): void {
    this.resources.reset();
    for (const kind of KINDS) {
      const byState = counts.get(kind);
      for (const sync of SYNC_STATES) {
        const n = byState?.get(sync) ?? 0;
        this.resources.set({ kind, sync }, Number.isFinite(n) ? n : 0);
      }
    }
  }

  /** `quota` 0 means the user has no limit. */
  setHomeUsage(user: string, usedBytes: number, quotaBytes: number): void {
    if (Number.isFinite(usedBytes)) this.homeUsed.set({ user }, usedBytes);
    if (Number.isFinite(quotaBytes)) this.homeQuota.set({ user }, quotaBytes);
  }

  /** Drops a user's series, e.g. after the User is deleted, so they do not linger at their last value. */
  clearHomeUsage(user: string): void {
    this.homeUsed.remove({ user });
    this.homeQuota.remove({ user });
  }
}

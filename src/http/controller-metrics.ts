/** Feeds the controller's progress into the Prometheus series. */
import type { ControllerObserver } from '../controller/observer.js';
import type { ResourceStatus, SyncState } from '../desired/store.js';
import type { Kind } from '../resources/kinds/index.js';
import type { Metrics } from './metrics.js';

const PUBLISH_MS = 100;

export function metricsObserver(metrics: Metrics): ControllerObserver {
  const syncs = new Map<string, { kind: Kind; sync: SyncState }>();
  // Kept up to date on each change rather than recounted: recounting ten thousand users on every
  // status write made first convergence quadratic.
  const counts = new Map<Kind, Map<SyncState, number>>();
  /** The usage last published per user, so an unchanged one is not set again. */
  const usages = new Map<string, string>();
  const count = (entry: { kind: Kind; sync: SyncState } | undefined, by: number): void => {
    if (!entry) return;
    const byKind = counts.get(entry.kind) ?? new Map<SyncState, number>();
    byKind.set(entry.sync, (byKind.get(entry.sync) ?? 0) + by);
    counts.set(entry.kind, byKind);
  };
  const set = (key: string, entry: { kind: Kind; sync: SyncState } | undefined): void => {
    const before = syncs.get(key);
    if (before?.sync === entry?.sync && before?.kind === entry?.kind) return;
    count(before, -1);
    count(entry, 1);
    if (entry) syncs.set(key, entry);
    else syncs.delete(key);
    // Rewriting every series per status write cost a second of CPU per 5,000 users converging:
    // publish at most every PUBLISH_MS instead.
    publishTimer ??= setTimeout(() => {
      publishTimer = undefined;
      metrics.setResourceCounts(counts);
    }, PUBLISH_MS).unref();
  };
  let publishTimer: NodeJS.Timeout | undefined;
  return {
    reconciled: (kind, result, seconds) => metrics.recordReconcile(kind, result, seconds),
    drift: (kind) => metrics.recordDrift(kind),
    queueDepth: (depth) => metrics.setQueueDepth(depth),
    retried: () => metrics.addRetries(1),
    leader: (isLeader) => metrics.setLeader(isLeader),
    statusWritten: (kind: Kind, name: string, status: ResourceStatus) => {
      if (status.sync) set(`${kind}/${name}`, { kind, sync: status.sync });
      if (kind === 'User' && status.usedBytes !== undefined) {
        const usage = `${status.usedBytes}/${status.quotaBytes ?? 0}`;
        if (usages.get(name) !== usage) {
          usages.set(name, usage);
          metrics.setHomeUsage(name, status.usedBytes, status.quotaBytes ?? 0);
        }
      }
    },
    statusCleared: (kind, name) => {
      set(`${kind}/${name}`, undefined);
      if (kind === 'User') {
        usages.delete(name);
        metrics.clearHomeUsage(name);
      }
    },
  };
}

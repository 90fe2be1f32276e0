/** Feeds the controller's progress into the Prometheus series. */
import type { ControllerObserver } from '../controller/observer.js';
import type { ResourceStatus, SyncState } from '../desired/store.js';
import type { Kind } from '../resources/kinds/index.js';
import type { Metrics } from './metrics.js';

export function metricsObserver(metrics: Metrics): ControllerObserver {
  const syncs = new Map<string, { kind: Kind; sync: SyncState }>();
  const publishCounts = (): void => {
    const counts = new Map<Kind, Map<SyncState, number>>();
    for (const { kind, sync } of syncs.values()) {
      const byKind = counts.get(kind) ?? new Map<SyncState, number>();
      byKind.set(sync, (byKind.get(sync) ?? 0) + 1);
      counts.set(kind, byKind);
    }
    metrics.setResourceCounts(counts);
  };
  return {
    reconciled: (kind, result, seconds) => metrics.recordReconcile(kind, result, seconds),
    drift: (kind) => metrics.recordDrift(kind),
    queueDepth: (depth) => metrics.setQueueDepth(depth),
    retried: () => metrics.addRetries(1),
    leader: (isLeader) => metrics.setLeader(isLeader),
    statusWritten: (kind: Kind, name: string, status: ResourceStatus) => {
      if (status.sync) syncs.set(`${kind}/${name}`, { kind, sync: status.sync });
      publishCounts();
      if (kind === 'User' && status.usedBytes !== undefined) {
        metrics.setHomeUsage(name, status.usedBytes, status.quotaBytes ?? 0);
      }
    },
    statusCleared: (kind, name) => {
      syncs.delete(`${kind}/${name}`);
      publishCounts();
      if (kind === 'User') metrics.clearHomeUsage(name);
    },
  };
}

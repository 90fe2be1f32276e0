/**
 * What the controller reports as it works, for metrics. The controller calls it; the HTTP side
 * implements it with prom-client, so nothing under src/controller imports a metrics library.
 */
import type { ResourceStatus } from '../desired/store.js';
import type { Kind } from '../resources/kinds/index.js';
import type { ReconcileResultType } from './workqueue.js';

export interface ControllerObserver {
  reconciled(kind: Kind, result: ReconcileResultType, seconds: number): void;
  drift(kind: Kind): void;
  queueDepth(depth: number): void;
  retried(): void;
  leader(isLeader: boolean): void;
  statusWritten(kind: Kind, name: string, status: ResourceStatus): void;
  statusCleared(kind: Kind, name: string): void;
}

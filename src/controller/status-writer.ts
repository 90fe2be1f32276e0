/**
 * Writes resource status to the store, skipping writes that would change nothing, and holding
 * back what it could not write while Redis is away, to write it once Redis answers again.
 */
import type { DesiredStore, ResourceStatus } from '../desired/store.js';
import type { Kind } from '../resources/kinds/index.js';
import type { ControllerObserver } from './observer.js';

type Pending = { readonly kind: Kind; readonly name: string; readonly status: ResourceStatus | undefined };

export class StatusWriter {
  /** What was last written per key, without timestamps, to skip identical writes. */
  private readonly written = new Map<string, string>();
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly store: DesiredStore,
    private readonly observer?: Pick<ControllerObserver, 'statusWritten' | 'statusCleared'>,
    /**
     * False while the store is known to be unreachable: writes are then held back at once rather
     * than sent, because the controller's client would hold them (and the reconcile) until Redis
     * returns.
     */
    private readonly available: () => boolean = () => true,
  ) {}

  /** Number of statuses waiting for Redis. */
  get heldBack(): number {
    return this.pending.size;
  }

  async write(kind: Kind, name: string, status: ResourceStatus): Promise<void> {
    const key = `${kind}/${name}`;
    const fingerprint = JSON.stringify({ ...status, lastSyncedAt: undefined });
    if (this.written.get(key) === fingerprint && !this.pending.has(key)) return;
    // A write that fails is not the reconcile's failure: the Swarm is what matters; status catches up.
    const complete: ResourceStatus = { message: '', ...status };
    this.observer?.statusWritten(kind, name, complete);
    // The store merges fields (HSET): a status still held back keeps the fields a later one leaves
    // out (lastDrift, lastDriftAt), just as writing both in turn would have.
    const held = this.pending.get(key)?.status;
    this.pending.set(key, { kind, name, status: held ? { ...held, ...complete } : complete });
    this.written.set(key, fingerprint);
    await this.flush();
  }

  async clear(kind: Kind, name: string): Promise<void> {
    const key = `${kind}/${name}`;
    if (!this.written.has(key) && !this.pending.has(key)) {
      // Nothing known in memory; clear anyway once, in case an earlier run left a status behind.
      this.written.set(key, 'cleared');
    } else if (this.written.get(key) === 'cleared') return;
    this.written.set(key, 'cleared');
    this.observer?.statusCleared(kind, name);
    this.pending.set(key, { kind, name, status: undefined });
    await this.flush();
  }

  /** Writes everything held back; stops at the first failure and keeps the rest for next time. */
  async flush(): Promise<boolean> {
    if (!this.available()) return this.pending.size === 0;
    for (const [key, item] of this.pending) {
      try {
        if (item.status) await this.store.writeStatus(item.kind, item.name, item.status);
        else await this.store.clearStatus(item.kind, item.name);
        this.pending.delete(key);
      } catch {
        return false;
      }
    }
    return true;
  }
}

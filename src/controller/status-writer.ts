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
  /** The one flush running; writes made meanwhile ask it for another round instead of starting their own. */
  private flushing: Promise<boolean> | undefined;
  private again = false;
  /**
   * Keys written during an outage, or that a flush could not write, since `takeHeldBack` was last
   * asked: what an outage held back.
   */
  private readonly heldSinceAsked = new Set<string>();
  /** From `outageBegan` to the next `takeHeldBack`. */
  private outage = false;

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

  /**
   * The controller found the store unreachable: what is written from now on waits for Redis,
   * whether here (while the connection is known to be down) or in the client's offline queue
   * (before the client has noticed).
   */
  outageBegan(): void {
    this.outage = true;
  }

  /**
   * Number of statuses that had to wait for Redis since the last call, whether written since or
   * still waiting; ends the outage. Not the pending count at the time of asking: once Redis
   * answers, any reconcile's write flushes everything pending, so that count races with the
   * reconciles.
   */
  takeHeldBack(): number {
    const held = this.heldSinceAsked.size;
    this.heldSinceAsked.clear();
    this.outage = false;
    return held;
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
    if (this.outage) this.heldSinceAsked.add(key);
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
    if (this.outage) this.heldSinceAsked.add(key);
    await this.flush();
  }

  /**
   * Writes everything held back, in one round trip per round; on a failure keeps the rest for next
   * time. One flush runs at a time: with dozens of reconciles writing at once, each running its
   * own pass over everything pending wrote every status many times over.
   */
  flush(): Promise<boolean> {
    this.again = true;
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async drain(): Promise<boolean> {
    while (this.again) {
      this.again = false;
      if (!this.available()) return this.holdPending();
      const batch = [...this.pending.entries()];
      try {
        await this.send(batch.map(([, item]) => item));
      } catch {
        return this.holdPending();
      }
      // A status written again while this one was on its way stays for the next round.
      for (const [key, item] of batch) if (this.pending.get(key) === item) this.pending.delete(key);
    }
    return true;
  }

  private holdPending(): boolean {
    for (const key of this.pending.keys()) this.heldSinceAsked.add(key);
    return this.pending.size === 0;
  }

  private async send(items: readonly Pending[]): Promise<void> {
    if (this.store.writeStatuses) {
      await this.store.writeStatuses(items);
      return;
    }
    for (const item of items) {
      if (item.status) await this.store.writeStatus(item.kind, item.name, item.status);
      else await this.store.clearStatus(item.kind, item.name);
    }
  }
}

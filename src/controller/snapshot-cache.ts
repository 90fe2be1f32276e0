/**
 * One observed snapshot shared by the reconciles that run between two changes, like an
 * informer's cache: any Docker event or any action taken invalidates it, and it is re-read on
 * the next request. A resync of every key therefore costs one set of list calls, not one per key.
 *
 * Two things keep repairs off the seven list calls of a relist: after a burst of events the
 * snapshot is re-read in the background once things are quiet (`refreshSoon`), and a removal the
 * engine reports is applied to the snapshot in place (`serviceRemoved`, `networkRemoved`), so the
 * reconcile it sets off plans at once.
 */
import type { ObservedReader, ObservedSnapshot } from '../observed/reader.js';

/** Quiet time after the last invalidation before a background re-read. */
const REFRESH_AFTER_MS = 100;

export class SnapshotCache {
  private current: Promise<ObservedSnapshot> | undefined;
  /** The value of `current` once read, while it is still current. */
  private value: ObservedSnapshot | undefined;
  private generation = 0;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** IDs of networks the Swarm removed whose local copy the engine may still list. */
  private readonly removedNetworks = new Set<string>();

  constructor(private readonly reader: ObservedReader) {}

  get(): Promise<ObservedSnapshot> {
    if (!this.current) {
      const generation = this.generation;
      const reading = this.reader.snapshot().then((snapshot) => this.withoutRemovedNetworks(snapshot));
      this.current = reading;
      reading.then(
        (snapshot) => {
          if (this.generation === generation && this.current === reading) this.value = snapshot;
        },
        // A failed read must not be served again; an invalidation during the read already dropped it.
        () => {
          if (this.generation === generation && this.current === reading) this.current = undefined;
        },
      );
    }
    return this.current;
  }

  invalidate(): void {
    this.generation += 1;
    this.current = undefined;
    this.value = undefined;
  }

  /** Re-reads in the background once no invalidation has come for a moment, unless a reconcile did first. */
  refreshSoon(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (!this.current) this.get().catch(() => undefined);
    }, REFRESH_AFTER_MS);
    this.refreshTimer.unref();
  }

  /**
   * The engine removed service `name` at `at` (ms since the epoch): drop it from the snapshot in
   * place when that snapshot was read before the removal and nothing invalidated it since.
   * Returns false when it could not (the caller invalidates instead).
   */
  serviceRemoved(name: string, at: number): boolean {
    const snapshot = this.value;
    if (!snapshot || !this.current || !(at > snapshot.takenAt)) return false;
    const services = new Map(snapshot.services);
    services.delete(name);
    this.patch({ ...snapshot, services });
    return true;
  }

  /**
   * The Swarm removed network `id` (a `network remove` event, which only the cluster sends). The
   * engine goes on listing its local copy until the last task on it has stopped, seconds later,
   * and creating a network of the same name meanwhile is refused with CheckDuplicate. So the ID is
   * left out of every snapshot from now on (until no listing has it), and out of the cached one
   * at once. Returns true when the cached snapshot was patched in place.
   */
  networkRemoved(id: string): boolean {
    this.removedNetworks.add(id);
    const snapshot = this.value;
    if (!snapshot || !this.current) return false;
    this.patch(this.withoutRemovedNetworks(snapshot));
    return true;
  }

  /** Serves `next` from now on in place of the cached snapshot it was derived from. */
  private patch(next: ObservedSnapshot): void {
    this.generation += 1;
    this.value = next;
    this.current = Promise.resolve(next);
  }

  private withoutRemovedNetworks(snapshot: ObservedSnapshot): ObservedSnapshot {
    if (this.removedNetworks.size === 0) return snapshot;
    const listed = new Set<string>();
    const networks = new Map(snapshot.networks);
    for (const [name, network] of snapshot.networks) {
      if (!this.removedNetworks.has(network.Id)) continue;
      listed.add(network.Id);
      networks.delete(name);
    }
    // Gone from the listing too: nothing left to hide.
    for (const id of this.removedNetworks) if (!listed.has(id)) this.removedNetworks.delete(id);
    return listed.size === 0 ? snapshot : { ...snapshot, networks };
  }

  stop(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }
}

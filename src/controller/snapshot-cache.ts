/**
 * One observed snapshot shared by the reconciles that run between two changes, like an
 * informer's cache: any Docker event or any action taken invalidates it, and it is re-read on
 * the next request. A resync of every key therefore costs one set of list calls, not one per key.
 */
import type { ObservedReader, ObservedSnapshot } from '../observed/reader.js';

export class SnapshotCache {
  private current: Promise<ObservedSnapshot> | undefined;
  private generation = 0;

  constructor(private readonly reader: ObservedReader) {}

  get(): Promise<ObservedSnapshot> {
    if (!this.current) {
      const generation = this.generation;
      const reading = this.reader.snapshot();
      this.current = reading;
      // A failed read must not be served again; an invalidation during the read already dropped it.
      reading.catch(() => {
        if (this.generation === generation && this.current === reading) this.current = undefined;
      });
    }
    return this.current;
  }

  invalidate(): void {
    this.generation += 1;
    this.current = undefined;
  }
}

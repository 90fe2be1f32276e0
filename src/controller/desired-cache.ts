/**
 * The controller's copy of the desired store, kept current by change notifications and full
 * relists. Reconciles read from here, so Redis being slow or briefly away does not stop repairs.
 */
import type { DesiredStore, StoredRecord } from '../desired/store.js';
import { isKind, type Kind } from '../resources/kinds/index.js';
import type { Resource } from '../resources/resource.js';

export function recordKey(record: StoredRecord): string {
  return record.ok
    ? `${record.resource.kind}/${record.resource.metadata.name}`
    : `${record.kind}/${record.name}`;
}

export class DesiredCache {
  private records = new Map<string, StoredRecord>();
  /**
   * The last valid version of each resource seen, kept after its record is deleted or turns
   * invalid: removal needs to know what the deleted resource asked for (a volume's reclaimPolicy).
   */
  private readonly lastValid = new Map<string, Resource>();
  private loaded = false;
  /**
   * Valid resources grouped by kind, built on first use after a change. Every User reconcile asks
   * for the HomeFolders, so without it a resync of thousands of users rescans the cache per user.
   */
  private byKind: Map<Kind, Resource[]> | undefined;
  /** The store's change counter read just before the last full list (undefined: unknown). */
  private listedCounter: string | undefined;

  constructor(private readonly store: DesiredStore) {}

  /** True once a full list has succeeded. */
  get isLoaded(): boolean {
    return this.loaded;
  }

  get size(): number {
    return this.records.size;
  }

  /**
   * Replaces the whole cache from one consistent listing; returns the keys that changed or
   * vanished. A record equal to the one cached keeps the cached object, so "unchanged" can be
   * told by identity.
   */
  async refreshAll(): Promise<string[]> {
    // Read first: a write landing during the list makes the next call list again, never less.
    const counter = await this.store.changeCounter?.();
    const listed = await this.store.list();
    const next = new Map<string, StoredRecord>();
    const changed: string[] = [];
    for (const record of listed) {
      const key = recordKey(record);
      const cached = this.records.get(key);
      if (cached !== undefined && sameRecord(cached, record)) next.set(key, cached);
      else {
        next.set(key, record);
        changed.push(key);
        this.remember(key, record);
      }
    }
    for (const key of this.records.keys()) if (!next.has(key)) changed.push(key);
    this.records = next;
    if (changed.length > 0) this.byKind = undefined;
    this.loaded = true;
    this.listedCounter = counter;
    return changed;
  }

  /**
   * Lists again unless the store's change counter says nothing was written through it since the
   * last list: notifications keep the cache current meanwhile. Returns the changed keys, or
   * undefined when the list was skipped.
   */
  async refreshIfChanged(): Promise<string[] | undefined> {
    if (this.loaded && this.listedCounter !== undefined) {
      const counter = await this.store.changeCounter?.();
      if (counter !== undefined && counter === this.listedCounter) return undefined;
    }
    return this.refreshAll();
  }

  /** Re-reads one record after a change notification. */
  async refresh(kind: string, name: string): Promise<void> {
    const key = `${kind}/${name}`;
    if (!isKind(kind)) {
      // Unknown kinds are listed so `status` can show them, but only a full list reads them.
      return;
    }
    const record = await this.store.get(kind, name);
    const cached = this.records.get(key);
    if (record && cached && sameRecord(cached, record)) return;
    this.byKind = undefined;
    if (record) {
      this.records.set(key, record);
      this.remember(key, record);
    } else this.records.delete(key);
  }

  get(key: string): StoredRecord | undefined {
    return this.records.get(key);
  }

  lastValidResource(key: string): Resource | undefined {
    return this.lastValid.get(key);
  }

  keys(): string[] {
    return [...this.records.keys()];
  }

  all(): StoredRecord[] {
    return [...this.records.values()];
  }

  /** Valid resources of one kind. */
  resources<K extends Kind>(kind: K): Extract<Resource, { kind: K }>[] {
    return [...this.resourceList(kind)];
  }

  /** `resources` without the copy, for loops over thousands of Users; valid until the next change. */
  resourceList<K extends Kind>(kind: K): readonly Extract<Resource, { kind: K }>[] {
    if (!this.byKind) {
      const grouped = new Map<Kind, Resource[]>();
      for (const record of this.records.values()) {
        if (!record.ok) continue;
        const list = grouped.get(record.resource.kind) ?? [];
        list.push(record.resource);
        grouped.set(record.resource.kind, list);
      }
      this.byKind = grouped;
    }
    // Each list holds only resources of its kind, by construction above.
    return (this.byKind.get(kind) ?? []) as Extract<Resource, { kind: K }>[];
  }

  private remember(key: string, record: StoredRecord): void {
    if (record.ok) this.lastValid.set(key, record.resource);
  }
}

function sameRecord(a: StoredRecord, b: StoredRecord): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/**
 * What the status page shows, read from the store in one pass: every resource with its sync,
 * health and message, the prune guard, the home folders against their quotas, and who leads.
 * `/` renders it; `/status.json` sends it as is, so the page's script only has to draw it.
 *
 * No spec is read into it, only names and the status the controller wrote, so no Secret data
 * (nor any other spec value) can reach the page.
 */
import { age } from '../../cli/commands/status.js';
import type { LeaderRole } from '../../controller/leader.js';
import { recordKey } from '../../controller/desired-cache.js';
import type { LeaseHolder } from '../../desired/lease.js';
import type { DesiredStore, PruneGuard, ResourceStatus } from '../../desired/store.js';
import { isKind } from '../../resources/kinds/index.js';

/** How a row is coloured: converged, on its way, needing a look, kept after deletion, not yet seen. */
export type Tone = 'ok' | 'progress' | 'bad' | 'muted' | 'unknown';

export interface ResourceRow {
  readonly kind: string;
  readonly name: string;
  /** `Unknown` until the controller has written a status. */
  readonly sync: string;
  readonly health: string | null;
  readonly message: string;
  readonly tone: Tone;
  readonly lastSyncedAt: string | null;
  readonly lastDriftAt: string | null;
  /** `12s`, `3m`, ... before `generatedAt`; `-` when never. */
  readonly syncedAge: string;
  readonly driftAge: string;
}

export interface UserUsage {
  readonly name: string;
  readonly usedBytes: number;
  /** 0: no limit. */
  readonly quotaBytes: number;
  /** used / quota, or null without a limit. */
  readonly ratio: number | null;
  readonly usedText: string;
  readonly quotaText: string;
}

export interface LeaderView {
  /** Leader election off: this replica always acts, and there is no lease. */
  readonly election: boolean;
  readonly identity: string;
  readonly role: LeaderRole;
  /** The lease holder's identity, or null when nobody holds it (or election is off). */
  readonly holder: string | null;
  /** Remaining lease time; null when none or without expiry. */
  readonly ttlMs: number | null;
}

export interface StatusSnapshot {
  /** ISO 8601. */
  readonly generatedAt: string;
  readonly prefix: string;
  readonly leader: LeaderView;
  readonly guard: PruneGuard | null;
  readonly summary: { readonly total: number } & Readonly<Record<Tone, number>>;
  readonly resources: readonly ResourceRow[];
  /** Nearest their limit first; users without a limit after, by use. */
  readonly users: readonly UserUsage[];
}

export interface SnapshotSources {
  readonly store: Pick<DesiredStore, 'list' | 'readStatuses' | 'readGuard'>;
  readonly prefix: string;
  /** This replica's identity and role; without leader election the role is always `leader`. */
  readonly instance: () => {
    readonly identity: string;
    readonly role: LeaderRole;
    readonly election: boolean;
  };
  /** Who holds the lease; absent when leader election is off. */
  readonly leaseHolder?: () => Promise<LeaseHolder | undefined>;
  readonly now?: () => Date;
}

/**
 * Builds snapshots, sharing one between requests that come within `maxAgeMs` (every open page
 * polls), so the number of viewers does not multiply the listing of the whole store.
 */
export class SnapshotSource {
  private cached: { at: number; snapshot: Promise<StatusSnapshot> } | undefined;

  constructor(
    private readonly sources: SnapshotSources,
    private readonly maxAgeMs = 1_000,
  ) {}

  get(): Promise<StatusSnapshot> {
    const now = performance.now();
    if (this.cached && now - this.cached.at < this.maxAgeMs) return this.cached.snapshot;
    const snapshot = buildSnapshot(this.sources);
    const entry = { at: now, snapshot };
    this.cached = entry;
    // A failed read is not kept: the next request tries again.
    snapshot.catch(() => {
      if (this.cached === entry) this.cached = undefined;
    });
    return snapshot;
  }
}

export async function buildSnapshot(sources: SnapshotSources): Promise<StatusSnapshot> {
  const { store } = sources;
  const [records, guard, holder] = await Promise.all([
    store.list(),
    store.readGuard(),
    sources.leaseHolder?.() ?? Promise.resolve(undefined),
  ]);
  const refs = records.flatMap((r) => {
    const kind = r.ok ? r.resource.kind : r.kind;
    const name = r.ok ? r.resource.metadata.name : r.name;
    return isKind(kind) ? [{ kind, name }] : [];
  });
  const statuses = await store.readStatuses(refs);
  const now = sources.now?.() ?? new Date();

  const resources: ResourceRow[] = [];
  const users: UserUsage[] = [];
  for (const record of records) {
    const key = recordKey(record);
    const separator = key.indexOf('/');
    const kind = key.slice(0, separator);
    const name = key.slice(separator + 1);
    const status: ResourceStatus = statuses.get(key) ?? {};
    // A record that does not validate is Invalid whatever the controller last wrote.
    const sync = record.ok ? (status.sync ?? 'Unknown') : 'Invalid';
    const health = record.ok ? (status.health ?? null) : null;
    resources.push({
      kind,
      name,
      sync,
      health,
      message: record.ok
        ? (status.message ?? '')
        : record.issues.map((i) => `${i.path}: ${i.message}`).join('; '),
      tone: toneOf(sync, health),
      lastSyncedAt: status.lastSyncedAt ?? null,
      lastDriftAt: status.lastDriftAt ?? null,
      syncedAge: age(status.lastSyncedAt, now),
      driftAge: age(status.lastDriftAt, now),
    });
    if (kind === 'User' && record.ok && status.usedBytes !== undefined) {
      users.push(usageOf(name, status.usedBytes, status.quotaBytes ?? 0));
    }
  }

  const summary = { total: resources.length, ok: 0, progress: 0, bad: 0, muted: 0, unknown: 0 };
  for (const row of resources) summary[row.tone] += 1;
  const instance = sources.instance();
  return {
    generatedAt: now.toISOString(),
    prefix: sources.prefix,
    leader: {
      election: instance.election,
      identity: instance.identity,
      role: instance.role,
      holder: holder?.holder ?? null,
      ttlMs: holder === undefined || !Number.isFinite(holder.ttlMs) ? null : holder.ttlMs,
    },
    guard: guard ?? null,
    summary,
    resources,
    users: users.sort(byNearestLimit),
  };
}

export function toneOf(sync: string, health: string | null): Tone {
  if (sync === 'Retained' || sync === 'Archived') return 'muted';
  if (sync === 'Unknown') return 'unknown';
  // Pending waits for a dependency: its object is missing on purpose, and it will come.
  if (sync === 'Pending') return 'progress';
  if (sync !== 'Synced' || health === 'Degraded' || health === 'Missing') return 'bad';
  return health === 'Progressing' ? 'progress' : 'ok';
}

function usageOf(name: string, usedBytes: number, quotaBytes: number): UserUsage {
  return {
    name,
    usedBytes,
    quotaBytes,
    ratio: quotaBytes > 0 ? usedBytes / quotaBytes : null,
    usedText: formatBytes(usedBytes),
    quotaText: quotaBytes > 0 ? formatBytes(quotaBytes) : 'no limit',
  };
}

/** Highest share of the limit first; users without a limit last, most used first; then by name. */
export function byNearestLimit(a: UserUsage, b: UserUsage): number {
  if (a.ratio !== null && b.ratio !== null && a.ratio !== b.ratio) return b.ratio - a.ratio;
  if (a.ratio === null && b.ratio !== null) return 1;
  if (a.ratio !== null && b.ratio === null) return -1;
  if (a.usedBytes !== b.usedBytes) return b.usedBytes - a.usedBytes;
  return a.name.localeCompare(b.name);
}

/** 1024-based, as quotas are written: `512 MiB`, `1.5 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 || Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

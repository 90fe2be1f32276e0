/**
 * The role a quota backend plays for home folders: put a hard block limit on each folder, lift it
 * when the user goes, and say how much each folder uses. `HomeFolders.spec.quota.driver` picks
 * the backend: `xfs` (xfs.ts) or `none` (below).
 */

/** One home folder under quota. */
export interface QuotaEntry {
  /** The folder name, which is also the project name in reports and /etc/projid. */
  readonly project: string;
  /** The folder's XFS project ID, from a ProjectIdAllocator: stable for the life of the name. */
  readonly id: number;
  /** Absolute path of the folder, inside the driver's export root. */
  readonly path: string;
  /** Hard block limit in bytes; 0 means no limit. */
  readonly hardLimitBytes: number;
}

/** What `release` needs: the limit it sets is always 0. */
export type QuotaTarget = Omit<QuotaEntry, 'hardLimitBytes'>;

export interface QuotaUsage {
  readonly usedBytes: number;
  /** 0 means no limit. */
  readonly hardLimitBytes: number;
}

export interface QuotaDriver {
  /** Tags each folder tree with its project ID and sets its hard limit. Idempotent. */
  apply(entries: readonly QuotaEntry[]): Promise<void>;
  /** Sets each project's limit to 0, so a removed user's folder is no longer capped. */
  release(entries: readonly QuotaTarget[]): Promise<void>;
  /** Usage and hard limit per project name (see the driver for projects it cannot name). */
  report(): Promise<Map<string, QuotaUsage>>;
}

/** `driver: none`: folders get no quota, and there is nothing to report. */
export class NoQuotaDriver implements QuotaDriver {
  apply(_entries: readonly QuotaEntry[]): Promise<void> {
    return Promise.resolve();
  }

  release(_entries: readonly QuotaTarget[]): Promise<void> {
    return Promise.resolve();
  }

  report(): Promise<Map<string, QuotaUsage>> {
    return Promise.resolve(new Map<string, QuotaUsage>());
  }
}

/**
 * Which settled users a resync looks at on disk. With thousands of users, two `lstat` calls per
 * user per resync is most of a resync's CPU, and its garbage; a window that moves round the list
 * bounds that work whatever the number of users, at the price of finding an out-of-band chown or
 * removal a few periods later. Everything that costs no I/O (records, quota report, volumes) is
 * still checked for every user on every resync.
 */

/** Settled users whose folder a resync looks at, by default: every user up to this many. */
export const DEFAULT_FOLDERS_PER_RESYNC = 2000;

export interface SweepWindow {
  /** Index of the first user looked at. */
  readonly start: number;
  /** How many users from `start` on, wrapping round the end of the list. */
  readonly count: number;
  /** Where the next resync's window starts. */
  readonly next: number;
}

/**
 * The window of a list of `total` users starting at `cursor`, `limit` users long (0: all of them).
 * A cursor past the end (the list shrank) starts again at the front.
 */
export function sweepWindow(cursor: number, total: number, limit: number): SweepWindow {
  if (total === 0) return { start: 0, count: 0, next: 0 };
  const start = cursor < total ? cursor : 0;
  const count = limit === 0 || limit >= total ? total : limit;
  return { start, count, next: (start + count) % total };
}

/** Whether index `i` of the list falls inside `window`. */
export function inSweepWindow(window: SweepWindow, i: number, total: number): boolean {
  return (i - window.start + total) % total < window.count;
}

/** Resyncs it takes for every folder to be looked at once (HomeFolders' status message says it). */
export function resyncsPerFullSweep(total: number, limit: number): number {
  return limit === 0 || total <= limit ? 1 : Math.ceil(total / limit);
}

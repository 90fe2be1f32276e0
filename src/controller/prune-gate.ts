/**
 * Refuses removals when the desired set collapses, as Argo CD's `allowEmpty: false` does: if the
 * store turns up empty, or holds fewer than half the resources it held at the last accepted
 * count, nothing is removed and a guard is written until `swarmkeeper prune --confirm`.
 */
import type { DesiredStore, PruneGuard } from '../desired/store.js';
import type { Clock } from './clock.js';

export type RemovalVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: string; readonly newlyHeld: boolean };

export class PruneGate {
  private baseline: number | undefined;
  /** Checks run one at a time, so removals racing each other see one verdict and one guard write. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: DesiredStore,
    private readonly wallClock: () => Date = () => new Date(),
    /** False while the store is known to be unreachable: no removal is allowed then. */
    private readonly available: () => boolean = () => true,
  ) {}

  /** Lets the accepted count grow with the desired set; only removals may shrink it. */
  observeCount(count: number): void {
    if (this.baseline === undefined || count > this.baseline) this.baseline = count;
  }

  /** Asks, right before a removal, whether the desired set as it is now may drive removals. */
  check(): Promise<RemovalVerdict> {
    const verdict = this.queue.then(() => this.evaluate());
    this.queue = verdict.catch(() => undefined);
    return verdict;
  }

  private async evaluate(): Promise<RemovalVerdict> {
    // Without the store the desired set cannot be checked, and a check would wait for Redis.
    if (!this.available())
      return { allowed: false, reason: 'the desired store is unavailable', newlyHeld: false };
    const guard = await this.store.readGuard();
    if (guard?.state === 'held') return { allowed: false, reason: guard.reason, newlyHeld: false };
    const count = (await this.store.list()).length;
    if (guard?.state === 'confirmed') {
      await this.store.clearGuard();
      this.baseline = count;
      return { allowed: true };
    }
    const previous = this.baseline ?? count;
    const reason =
      count === 0
        ? 'the desired store is empty'
        : count * 2 < previous
          ? `the desired store lost more than half its resources at once (${previous} → ${count})`
          : undefined;
    if (reason === undefined) {
      this.baseline = count;
      return { allowed: true };
    }
    const held: PruneGuard = {
      state: 'held',
      reason: `${reason}; nothing is removed until \`swarmkeeper prune --confirm\``,
      since: this.wallClock().toISOString(),
      desiredCount: count,
      previousCount: previous,
    };
    await this.store.writeGuard(held);
    return { allowed: false, reason: held.reason, newlyHeld: true };
  }
}

/** How long a key must stay missing from the store before its objects are removed. */
export const REMOVAL_GRACE_MS = 2_000;

/**
 * Remembers when each key was first found missing, so a mass deletion done one key at a time is
 * seen whole by the gate before the first removal rather than after the last.
 */
export class RemovalGrace {
  private readonly firstMissing = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly graceMs: number = REMOVAL_GRACE_MS,
  ) {}

  /** Milliseconds left to wait before removing, 0 when the grace has passed. */
  remaining(key: string): number {
    const now = this.clock.now();
    const first = this.firstMissing.get(key);
    if (first === undefined) {
      this.firstMissing.set(key, now);
      return this.graceMs;
    }
    return Math.max(0, first + this.graceMs - now);
  }

  forget(key: string): void {
    this.firstMissing.delete(key);
  }
}

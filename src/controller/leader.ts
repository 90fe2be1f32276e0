/**
 * Leader election over a {@link Lease}, after client-go's: only the leader reconciles, and it stops
 * acting as soon as it can no longer be sure the lease is still its own.
 *
 * Why stepping down on our own clock is safe: the deadline is measured from when the last
 * successful acquire or renew was SENT. Redis applied that command no earlier, so the lease it set
 * runs until at least `sentAt + leaseMs` on Redis's clock, and no other replica can acquire before
 * then. We step down at `sentAt + renewDeadlineMs` on ours. Measuring from the reply instead would
 * let a slow reply eat into that margin without our knowing.
 *
 * The assumption this rests on (bounded clock skew): our monotonic clock and Redis's expiry clock
 * run at similar RATES. If ours runs slow by a fraction `s`, our `renewDeadlineMs` lasts
 * `renewDeadlineMs / (1 - s)` real ms, which stays under `leaseMs` only while
 * `s < (leaseMs - renewDeadlineMs) / leaseMs` (one third with the defaults 15 s / 10 s). The margin
 * must also cover how late the deadline timer fires (event-loop lag) and how long the work already
 * started takes to notice; wall-clock offsets do not matter, only rates. A process that is paused
 * (GC, SIGSTOP, a frozen VM) breaks the assumption outright: its clock stands still while the lease
 * expires, so work should check `isLeader` right before each change, and the next renew of a lease
 * taken over in the meantime fails and steps down.
 *
 * This module does not log: `onTransition` reports every change for the controller to log.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import type { Lease } from '../desired/lease.js';
import { ConfigError, StoreUnavailableError } from '../errors.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

export const DEFAULT_LEASE_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_MS = 2_000;

export type LeaderRole = 'stopped' | 'follower' | 'leader';

export type TransitionReason =
  /** `start()` was called. */
  | 'started'
  /** A follower took the free lease, or kept one a late answer had extended for it. */
  | 'acquired'
  /** A renew found someone else holding the lease (it expired and was taken, or was overwritten). */
  | 'lease-lost'
  /** No renew succeeded within `renewDeadlineMs` (Redis down, slow or failing). */
  | 'renew-deadline'
  /** `stop()` was called. */
  | 'stopped';

export interface LeaderTransition {
  readonly from: LeaderRole;
  readonly to: LeaderRole;
  readonly reason: TransitionReason;
  readonly identity: string;
  /** On `renew-deadline`: the last failure, when renewals threw rather than went unanswered. */
  readonly error?: unknown;
}

export interface LeaderElectorOptions {
  readonly lease: Lease;
  /** Unique per process, so a restarted replica never mistakes its predecessor's lease for its own; see {@link instanceIdentity}. */
  readonly identity: string;
  /** How long the lease lasts in Redis after each acquire or renew. Default 15 s. */
  readonly leaseMs?: number;
  /** How long the leader keeps acting without a successful renew. Must be below `leaseMs`. Default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Interval between acquire attempts (follower) and renewals (leader). Must be below `renewDeadlineMs`. Default 2 s. */
  readonly retryMs?: number;
  readonly clock?: Clock;
  /** Called synchronously on every role change, after `leadership$` has emitted. Must not throw; if it does, the error is dropped. */
  readonly onTransition?: (event: LeaderTransition) => void;
}

/** `hostname:pid:random`: distinct across hosts, processes, and restarts that reuse a pid. */
export function instanceIdentity(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/**
 * The largest fraction by which the leader's clock may run slower than Redis's while stepping
 * down still comes strictly before the lease expires.
 */
export function clockSkewBudget(leaseMs: number, renewDeadlineMs: number): number {
  return (leaseMs - renewDeadlineMs) / leaseMs;
}

/** Why these timings cannot give the guarantee; empty when they can. */
export function timingIssues(timing: {
  readonly leaseMs: number;
  readonly renewDeadlineMs: number;
  readonly retryMs: number;
}): string[] {
  const issues: string[] = [];
  for (const [name, value] of Object.entries(timing)) {
    if (!Number.isSafeInteger(value) || value <= 0) issues.push(`${name} must be a positive integer`);
  }
  if (issues.length > 0) return issues;
  if (timing.renewDeadlineMs >= timing.leaseMs) {
    issues.push('renewDeadlineMs must be below leaseMs, or another replica may acquire while we still act');
  }
  if (timing.retryMs >= timing.renewDeadlineMs) {
    issues.push('retryMs must be below renewDeadlineMs, or the leader gets no renew in before its deadline');
  }
  return issues;
}

/**
 * Campaigns for the lease and, once it has it, keeps it. `leadership$` (and `isLeader`) turn false
 * the moment the lease may no longer be ours: a renew answered "someone else holds it", or
 * `renewDeadlineMs` passed since the last renew that succeeded was sent.
 *
 * One lease call is out at a time: a tick that finds the previous call still pending is skipped,
 * so a slow or hung Redis never has renewals stacked behind it. The deadline has its own timer, so
 * a hung call does not hold the step-down back.
 *
 * An elector runs once: `start()` after `stop()` throws.
 */
export class LeaderElector {
  readonly identity: string;
  readonly #lease: Lease;
  readonly #leaseMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryMs: number;
  readonly #clock: Clock;
  readonly #onTransition: ((event: LeaderTransition) => void) | undefined;
  readonly #leadership = new BehaviorSubject<boolean>(false);
  readonly leadership$: Observable<boolean>;

  #role: LeaderRole = 'stopped';
  #started = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;
  #inFlight: Promise<void> | undefined;
  #tickTimer: TimerHandle | undefined;
  #deadlineTimer: TimerHandle | undefined;
  /** When the last acquire or renew that succeeded was sent; meaningful while leader. */
  #validFrom = 0;
  /** The last lease call failure since the last success, for the `renew-deadline` report. */
  #lastError: unknown;
  /**
   * Set when the lease may be ours although we do not lead: a renew or acquire whose answer came
   * after we had stepped down. Such a lease would otherwise sit unused until it expired, with
   * SET NX refusing even us; so the next attempt renews it first, and `stop()` releases it.
   */
  #mayHoldLease = false;

  constructor(options: LeaderElectorOptions) {
    if (options.identity === '') throw new ConfigError('leader election: identity must not be empty');
    const timing = {
      leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
      renewDeadlineMs: options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS,
      retryMs: options.retryMs ?? DEFAULT_RETRY_MS,
    };
    const issues = timingIssues(timing);
    if (issues.length > 0) throw new ConfigError(`leader election: ${issues.join('; ')}`);
    this.identity = options.identity;
    this.#lease = options.lease;
    this.#leaseMs = timing.leaseMs;
    this.#renewDeadlineMs = timing.renewDeadlineMs;
    this.#retryMs = timing.retryMs;
    this.#clock = options.clock ?? systemClock;
    this.#onTransition = options.onTransition;
    this.leadership$ = this.#leadership.pipe(distinctUntilChanged());
  }

  /** Like `isLeader`, this steps down first when the deadline has passed and the timer is late. */
  get role(): LeaderRole {
    this.#enforceDeadline();
    return this.#role;
  }

  /**
   * Checks the deadline itself rather than trusting the timer alone, so a caller asking just
   * before it acts is never told yes after the deadline, however late the timer runs.
   */
  get isLeader(): boolean {
    return this.role === 'leader';
  }

  /** Starts campaigning at once, then every `retryMs`. */
  start(): void {
    if (this.#stopped) throw new Error('LeaderElector: cannot start after stop()');
    if (this.#started) return;
    this.#started = true;
    this.#transition('follower', 'started');
    this.#scheduleTick();
    this.#attempt();
  }

  /**
   * Stops acting at once (`leadership$` emits false, then completes), then gives the lease up if
   * we may hold it, after the lease call still out (if any) has answered, so that one cannot take
   * the lease back afterwards. Rejects with a StoreUnavailableError when the release fails or the
   * store has not answered within `retryMs`; the lease then expires on its own within `leaseMs`.
   * A call the client still has queued may reach Redis after that and hold the lease, unused, for
   * one more `leaseMs`: ioredis cannot take a command back.
   */
  stop(): Promise<void> {
    // Set before anything runs: subscribers told of the step-down may call back in.
    this.#stopped = true;
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    this.#cancelTimers();
    if (this.#role === 'leader') this.#mayHoldLease = true;
    if (this.#role !== 'stopped') this.#transition('stopped', 'stopped');
    this.#leadership.complete();
    if (this.#inFlight === undefined && !this.#mayHoldLease) return;

    let timer: TimerHandle | undefined;
    // Releasing only shortens the wait for the next leader: not worth holding shutdown past the
    // orchestrator's grace period (10 s by default in Swarm) for a store that is not answering.
    const giveUp = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(() => {
        reject(
          new StoreUnavailableError(
            `release the leader lease: the store did not answer within ${this.#retryMs} ms`,
          ),
        );
      }, this.#retryMs);
    });
    try {
      await Promise.race([this.#releaseAfterInFlight(), giveUp]);
    } finally {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
    }
  }

  async #releaseAfterInFlight(): Promise<void> {
    await this.#inFlight;
    if (!this.#mayHoldLease) return;
    await this.#lease.release(this.identity);
    this.#mayHoldLease = false;
  }

  #scheduleTick(): void {
    this.#tickTimer = this.#clock.setTimeout(() => {
      this.#tickTimer = undefined;
      if (!this.#running) return;
      this.#scheduleTick();
      this.#attempt();
    }, this.#retryMs);
  }

  get #running(): boolean {
    return this.#started && !this.#stopped;
  }

  /** Starts one lease call unless one is still out. */
  #attempt(): void {
    if (this.#inFlight !== undefined) return;
    const call = this.#role === 'leader' ? this.#renewAsLeader() : this.#campaign();
    // The calls catch their own failures; this only keeps a bug in them from becoming an
    // unhandled rejection, stepping down because nothing is known about the lease any more.
    this.#inFlight = call
      .catch((error: unknown) => {
        this.#lastError = error;
        this.#mayHoldLease = true;
        if (this.#role === 'leader') this.#transition('follower', 'renew-deadline', error);
      })
      .finally(() => {
        this.#inFlight = undefined;
      });
  }

  async #renewAsLeader(): Promise<void> {
    const sentAt = this.#clock.now();
    let renewed: boolean;
    try {
      renewed = await this.#lease.renew(this.identity, this.#leaseMs);
    } catch (error: unknown) {
      // Not yet a reason to step down: the deadline timer decides, from the last success.
      this.#lastError = error;
      // The command may still have run on the server; only matters if we step down meanwhile.
      if (this.#role !== 'leader') this.#mayHoldLease = true;
      return;
    }
    if (this.#role !== 'leader') {
      // Stepped down (deadline or stop) while this was out: keep the lease it extended in mind.
      if (renewed) this.#mayHoldLease = true;
      return;
    }
    if (!renewed) {
      this.#transition('follower', 'lease-lost');
      return;
    }
    this.#confirm(sentAt);
  }

  async #campaign(): Promise<void> {
    if (this.#mayHoldLease) {
      const sentAt = this.#clock.now();
      let renewed: boolean;
      try {
        renewed = await this.#lease.renew(this.identity, this.#leaseMs);
      } catch (error: unknown) {
        this.#lastError = error;
        return;
      }
      this.#mayHoldLease = renewed;
      if (!this.#running) return;
      if (renewed) {
        this.#lead(sentAt);
        return;
      }
    }
    const sentAt = this.#clock.now();
    let acquired: boolean;
    try {
      acquired = await this.#lease.tryAcquire(this.identity, this.#leaseMs);
    } catch (error: unknown) {
      // The SET may have run although the reply was lost.
      this.#lastError = error;
      this.#mayHoldLease = true;
      return;
    }
    if (!acquired) return;
    if (!this.#running) {
      this.#mayHoldLease = true;
      return;
    }
    this.#lead(sentAt);
  }

  #lead(sentAt: number): void {
    if (this.#clock.now() - sentAt >= this.#renewDeadlineMs) {
      // The answer took so long that the lease it granted is already too old to act on.
      this.#mayHoldLease = true;
      return;
    }
    this.#mayHoldLease = false;
    this.#lastError = undefined;
    this.#validFrom = sentAt;
    this.#armDeadline();
    this.#transition('leader', 'acquired');
  }

  #confirm(sentAt: number): void {
    // A success only moves the deadline forward; the timer may not have fired yet on a late answer.
    if (this.#enforceDeadline()) {
      this.#mayHoldLease = true;
      return;
    }
    this.#validFrom = Math.max(this.#validFrom, sentAt);
    this.#lastError = undefined;
    this.#armDeadline();
  }

  #armDeadline(): void {
    if (this.#deadlineTimer !== undefined) this.#clock.clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = this.#clock.setTimeout(
      () => {
        this.#deadlineTimer = undefined;
        if (!this.#enforceDeadline() && this.#role === 'leader') this.#armDeadline();
      },
      this.#validFrom + this.#renewDeadlineMs - this.#clock.now(),
    );
  }

  /** Steps down if the deadline has passed; true when it did. */
  #enforceDeadline(): boolean {
    if (this.#role !== 'leader') return false;
    if (this.#clock.now() - this.#validFrom < this.#renewDeadlineMs) return false;
    // Renewals that failed on the way back may still have extended the lease on the server.
    this.#mayHoldLease = true;
    this.#transition('follower', 'renew-deadline', this.#lastError);
    return true;
  }

  #cancelTimers(): void {
    if (this.#tickTimer !== undefined) this.#clock.clearTimeout(this.#tickTimer);
    if (this.#deadlineTimer !== undefined) this.#clock.clearTimeout(this.#deadlineTimer);
    this.#tickTimer = undefined;
    this.#deadlineTimer = undefined;
  }

  #transition(to: LeaderRole, reason: TransitionReason, error?: unknown): void {
    const from = this.#role;
    if (from === to) return;
    this.#role = to;
    if (to !== 'leader' && this.#deadlineTimer !== undefined) {
      this.#clock.clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
    // Acting stops here: subscribers hear of it before anything else runs.
    this.#leadership.next(to === 'leader');
    if (this.#onTransition === undefined) return;
    const event: LeaderTransition =
      error === undefined
        ? { from, to, reason, identity: this.identity }
        : { from, to, reason, identity: this.identity, error };
    try {
      this.#onTransition(event);
    } catch {
      // A failing observer must not keep the elector from stepping down or campaigning.
    }
  }
}

/**
 * The controller: desired-store changes, Docker events and a jittered resync, merged with rxjs
 * into one stream of keys, fed to a keyed work queue whose workers run the reconciler. This is
 * the one place that decides what a reconcile's outcome means for the log.
 */
import { merge, Subscription, type Observable } from 'rxjs';
import { reconnectDelayMs } from '../desired/redis-connection.js';
import type { DesiredChange, DesiredStore, StoreAvailability } from '../desired/store.js';
import { NotLeaderError, StoreUnavailableError, SwarmkeeperError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DockerEvent } from '../observed/events.js';
import type { ObservedReader, ObservedSnapshot } from '../observed/reader.js';
import { isKind, type Kind } from '../resources/kinds/index.js';
import { LABELS } from '../resources/metadata.js';
import type { ControllerObserver } from './observer.js';
import { systemClock, type Clock } from './clock.js';
import { DesiredCache } from './desired-cache.js';
import { keysForEvent } from './event-keys.js';
import { HomeReconciler, type HomeReconcilerOptions } from './homes.js';
import { PruneGate, RemovalGrace } from './prune-gate.js';
import { Reconciler, type ActionExecutor } from './reconciler.js';
import { resyncTicks } from './resync.js';
import { SnapshotCache } from './snapshot-cache.js';
import { StatusWriter } from './status-writer.js';
import { VolumeCheckJobs, type VolumeCheckJobsOptions } from './volume-jobs.js';
import { ReconcileResult, WorkQueue, type ReconcileOutcome } from './workqueue.js';

export interface ControllerOptions {
  readonly store: DesiredStore;
  readonly reader: ObservedReader;
  readonly executor: ActionExecutor;
  /** Docker events, with `relist` after every (re)connect. */
  readonly events: Observable<DockerEvent>;
  readonly log: Logger;
  /** This deployment's key prefix, carried by every object it creates. */
  readonly owner: string;
  readonly resyncMs: number;
  readonly concurrency?: number;
  readonly clock?: Clock;
  /** Work to finish before the first sync, e.g. resuming interrupted network recreates. */
  readonly beforeFirstSync?: () => Promise<void>;
  /**
   * Leadership: only the leader reconciles; a follower keeps its desired cache warm. Absent, this
   * instance always acts (a single replica, `run --once`, tests).
   */
  readonly leadership?: Observable<boolean>;
  /** Told of reconciles, drift, queue depth and status, for metrics. */
  readonly observer?: ControllerObserver;
  /** Home folders: project IDs and the quota backend per HomeFolders. Absent, Users stay Pending. */
  readonly homes?: Pick<
    HomeReconcilerOptions,
    'allocator' | 'quotaDriverFor' | 'faultInjector' | 'archives' | 'foldersPerResync'
  > & {
    /** The per-node volume check job: its image (absent, no job runs) and timing. */
    readonly volumeCheck?: Pick<VolumeCheckJobsOptions, 'image' | 'rerunAfterMs' | 'jobTimeoutMs'>;
  };
}

const DEFAULT_CONCURRENCY = 4;
/**
 * Users have a queue of their own: a User's reconcile is a dozen small filesystem calls, each
 * waiting on the thread pool, so four at a time left 10,000 users converging at ~250 a second
 * with the CPU mostly idle. They never talk to the Docker API except for a per-user volume.
 */
const USER_CONCURRENCY = 32;
/**
 * Every this many resyncs the store is listed in full even when its change counter has not
 * moved. Notifications are lost only while the subscription is down, and the store is listed
 * each time it is live again; this is the net under that net, so it can be rare: at 10,000
 * users a listing costs ~350 ms of CPU. The store's own SCAN runs at the same period.
 */
const STORE_RESCAN_FACTOR = 20;

export class Controller {
  private readonly cache: DesiredCache;
  private readonly snapshots: SnapshotCache;
  private readonly status: StatusWriter;
  private readonly queue: WorkQueue<string>;
  private readonly userQueue: WorkQueue<string>;
  private readonly reconciler: Reconciler;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly gate: PruneGate;
  private readonly homes: HomeReconciler | undefined;
  private subscription: Subscription | undefined;
  private availability: Subscription | undefined;
  private firstSyncDone = false;
  private resyncs = 0;
  private storeDown = false;
  /**
   * False from the moment the store's connection drops until it is back: status is held back and
   * removals wait, instead of queueing commands that would block reconciles until Redis returns.
   */
  private storeConnected = true;
  /** Whether this instance may act: true without leader election, else while it leads. */
  private active: boolean;
  private stopping = false;
  /** Set by `firstContact`: the startup sync need not list the store again. */
  private cacheFresh = false;
  private wakeFirstContact: (() => void) | undefined;

  constructor(private readonly options: ControllerOptions) {
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.active = options.leadership === undefined;
    this.cache = new DesiredCache(options.store);
    this.snapshots = new SnapshotCache(options.reader);
    this.status = new StatusWriter(options.store, options.observer, () => this.storeConnected);
    this.gate = new PruneGate(options.store, undefined, () => this.storeConnected);
    const { volumeCheck, ...homes } = options.homes ?? {};
    this.homes = options.homes
      ? new HomeReconciler({
          ...homes,
          allocator: options.homes.allocator,
          quotaDriverFor: options.homes.quotaDriverFor,
          volumeChecks: new VolumeCheckJobs({
            snapshots: this.snapshots,
            reader: options.reader,
            executor: this.guarded(options.executor),
            log: options.log,
            owner: options.owner,
            image: volumeCheck?.image,
            ...(volumeCheck?.rerunAfterMs !== undefined && { rerunAfterMs: volumeCheck.rerunAfterMs }),
            ...(volumeCheck?.jobTimeoutMs !== undefined && { jobTimeoutMs: volumeCheck.jobTimeoutMs }),
          }),
          cache: this.cache,
          store: options.store,
          status: this.status,
          snapshots: this.snapshots,
          executor: this.guarded(options.executor),
          gate: this.gate,
          log: options.log,
          enqueue: (key) => this.enqueue(key),
        })
      : undefined;
    const executor = this.guarded(options.executor);
    this.reconciler = new Reconciler({
      ...(this.homes && { homes: this.homes }),
      ...(options.observer && { onDrift: (kind: Kind) => options.observer?.drift(kind) }),
      cache: this.cache,
      snapshots: this.snapshots,
      reader: options.reader,
      executor,
      status: this.status,
      gate: this.gate,
      grace: new RemovalGrace(this.clock),
      log: options.log,
      owner: options.owner,
      enqueue: (key) => this.enqueue(key),
    });
    const queue = (concurrency: number): WorkQueue<string> =>
      new WorkQueue<string>({
        concurrency,
        clock: this.clock,
        handler: (key) =>
          this.active ? this.reconciler.reconcile(key) : Promise.resolve(ReconcileResult.done()),
        onOutcome: (outcome) => this.onOutcome(outcome),
      });
    this.queue = queue(options.concurrency ?? DEFAULT_CONCURRENCY);
    this.userQueue = queue(USER_CONCURRENCY);
  }

  /** True once the first full sync has been queued: the controller knows both sides. */
  get synced(): boolean {
    return this.firstSyncDone;
  }

  /** False while Redis is unreachable; repairs go on from the cached desired state meanwhile. */
  get storeReachable(): boolean {
    return !this.storeDown;
  }

  get isActive(): boolean {
    return this.active;
  }

  get queueDepth(): number {
    return this.queue.depth + this.userQueue.depth;
  }

  private enqueue(key: string): void {
    (key.startsWith('User/') ? this.userQueue : this.queue).add(key);
  }

  private async bothIdle(): Promise<void> {
    // A User's reconcile may queue Docker keys and the other way round: wait until both stay idle.
    while (this.queue.depth + this.queue.processing + this.userQueue.depth + this.userQueue.processing > 0)
      await Promise.all([this.queue.whenIdle(), this.userQueue.whenIdle()]);
  }

  /**
   * Starts the sources and the first full sync; resolves once that sync is queued. A Redis that
   * answers but cannot serve yet (a replica still syncing, MASTERDOWN during a failover) delays
   * this, retried with backoff, rather than ending the process or starting from an empty cache.
   */
  async start(): Promise<void> {
    this.availability = this.options.store
      .availability?.()
      .subscribe((availability) => this.onStoreAvailability(availability));
    const ready = await this.firstContact();
    if (!ready) return;
    await this.fullSync('startup');
    this.firstSyncDone = true;
    if (this.options.leadership)
      this.subscription = this.options.leadership.subscribe((leads) => this.onLeadership(leads));
    const sources = merge(
      this.options.store.watch({
        rescanIntervalMs: this.options.resyncMs * STORE_RESCAN_FACTOR,
        // Edits made between the last listing and now came with no notification.
        onSubscribed: () => void this.relistStore(),
      }),
      this.options.events,
      resyncTicks({ periodMs: this.options.resyncMs, clock: this.clock }),
    ).subscribe({
      next: (item) => this.onSource(item),
      error: (error: unknown) => this.log.error({ err: describeError(error) }, 'source failed'),
    });
    if (this.subscription) this.subscription.add(sources);
    else this.subscription = sources;
  }

  /**
   * Leading starts work with a full sync (finishing an interrupted network recreate first);
   * losing the lease stops every Docker write at once, through the guarded executor.
   */
  private onLeadership(leads: boolean): void {
    if (leads === this.active) return;
    this.active = leads;
    this.options.observer?.leader(leads);
    if (!leads) return;
    void (async () => {
      try {
        await this.options.beforeFirstSync?.();
      } catch (error) {
        this.log.error({ err: describeError(error) }, 'resuming interrupted work failed');
      }
      await this.fullSync('leader');
    })();
  }

  /** The executor, refusing to act the moment this instance stops leading. */
  private guarded(executor: ActionExecutor): ActionExecutor {
    const check = (): void => {
      if (!this.active) throw new NotLeaderError();
    };
    return {
      execute: (action, subject) => {
        check();
        return executor.execute(action, subject);
      },
      remove: (kind, name) => {
        check();
        return executor.remove(kind, name);
      },
    };
  }

  /** One pass over everything, for `run --once`: resolves when no work is queued or running. */
  async runOnce(): Promise<void> {
    await this.options.beforeFirstSync?.();
    await this.fullSync('once');
    this.firstSyncDone = true;
    await this.bothIdle();
  }

  /** Resolves when the queue has nothing queued or running (timed requeues aside). */
  whenIdle(): Promise<void> {
    return this.bothIdle();
  }

  /**
   * Until interrupted work is resumed and the desired state has been read once: each failure is
   * retried with backoff, the outage logged once. False when `stop` came first.
   */
  private async firstContact(): Promise<boolean> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        if (this.active) await this.options.beforeFirstSync?.();
        await this.cache.refreshAll();
        this.cacheFresh = true;
        return true;
      } catch (error) {
        if (error instanceof StoreUnavailableError) this.storeUnavailable(error);
        else if (attempt === 1)
          this.log.error({ err: describeError(error) }, 'resuming interrupted work failed; retrying');
        await new Promise<void>((resolve) => {
          this.wakeFirstContact = resolve;
          this.clock.setTimeout(resolve, reconnectDelayMs(attempt));
        });
      }
    }
    return false;
  }

  /** Stops taking work, lets in-flight reconciles finish (bounded), and flushes held-back status. */
  async stop(drainTimeoutMs = 10_000): Promise<boolean> {
    this.stopping = true;
    this.wakeFirstContact?.();
    this.subscription?.unsubscribe();
    this.availability?.unsubscribe();
    this.snapshots.stop();
    const [drained, usersDrained] = await Promise.all([
      this.queue.shutdown({ drainTimeoutMs }),
      this.userQueue.shutdown({ drainTimeoutMs }),
    ]);
    await this.homes?.drain();
    await this.status.flush();
    return drained && usersDrained;
  }

  private onSource(item: DesiredChange | DockerEvent | void): void {
    if (item === undefined) {
      void this.fullSync('resync');
      return;
    }
    if ('via' in item) {
      // The store's rescan announces every key; the periodic full list already checks the ones
      // the cache holds, so only a key it has never seen needs reading here.
      if (item.via === 'scan' && this.cache.get(`${item.kind}/${item.name}`) !== undefined) return;
      void this.onDesiredChange(item);
      return;
    }
    if (!this.patchRemoval(item)) this.snapshots.invalidate();
    if (!this.active) return;
    this.snapshots.refreshSoon();
    if (item.type === 'relist') {
      void this.fullSync(`docker-${item.reason}`);
      return;
    }
    const keys = keysForEvent(item);
    if ('allOf' in keys) {
      for (const resource of this.cache.resources(keys.allOf))
        this.enqueue(`Service/${resource.metadata.name}`);
    } else {
      for (const key of keys.keys) this.enqueue(key);
    }
  }

  /** Applies a removal the engine reported to the cached snapshot; false when it could not. */
  private patchRemoval(event: DockerEvent): boolean {
    if (event.type === 'relist' || event.action !== 'remove') return false;
    if (event.type === 'service')
      return event.name !== undefined && this.snapshots.serviceRemoved(event.name, event.time);
    if (event.type === 'network') return this.snapshots.networkRemoved(event.id);
    return false;
  }

  private async onDesiredChange(change: DesiredChange): Promise<void> {
    try {
      await this.cache.refresh(change.kind, change.name);
      this.storeUp();
    } catch (error) {
      this.storeUnavailable(error);
    }
    if (this.active) this.enqueue(`${change.kind}/${change.name}`);
  }

  /**
   * The store's connection went down (logged once per outage) or came back: a full sync then
   * reloads the desired state and writes the status held back meanwhile.
   */
  private onStoreAvailability({ available, reason }: StoreAvailability): void {
    if (available === this.storeConnected) return;
    this.storeConnected = available;
    if (!available) {
      this.storeUnavailable(
        new StoreUnavailableError(`the connection to Redis was lost (${reason ?? 'closed'}); reconnecting`),
      );
      return;
    }
    void this.fullSync('store-reconnected');
  }

  /**
   * Relists both sides and queues every key either side knows. Never throws. A periodic resync
   * lists the store only when its change counter moved (or every STORE_RESCAN_FACTOR resyncs),
   * and queues only the Users the home sweep picks out: with thousands of users, the rest would
   * each be read from disk to find nothing to do.
   */
  private async fullSync(reason: string): Promise<void> {
    // While the connection is down a listing would only wait for it: go on from the cache. The
    // first sync still waits, as there is no cache to go on from yet.
    // Keys whose record vanished since the last listing: a deletion whose notification was missed
    // (sent while the watch was still subscribing or reconnecting) must still be acted on.
    let changed: string[] = [];
    const periodic = reason === 'resync' && ++this.resyncs % STORE_RESCAN_FACTOR !== 0;
    if (this.storeConnected || reason === 'startup') {
      try {
        // At startup `firstContact` has just read everything.
        if (!this.cacheFresh)
          changed = (periodic ? await this.cache.refreshIfChanged() : await this.cache.refreshAll()) ?? [];
        this.cacheFresh = false;
        this.gate.observeCount(this.cache.size);
        this.storeUp();
        await this.status.flush();
        await this.homes?.refreshUsage();
        // Before any key is queued: a User whose archive was cut short must not look new.
        if (this.active) await this.homes?.resumeArchives();
      } catch (error) {
        // Keep repairing from the cached desired state; the next resync tries Redis again.
        this.storeUnavailable(error);
      }
    }
    const vanished = changed.filter((key) => this.cache.get(key) === undefined);
    let owned: string[] = [];
    let snapshot: ObservedSnapshot | undefined;
    try {
      this.snapshots.invalidate();
      snapshot = await this.snapshots.get();
      owned = ownedKeys(snapshot, this.options.owner);
    } catch (error) {
      this.log.warn({ err: describeError(error), reason }, 'docker unavailable');
    }
    // Valid Users come from the sweep; an invalid one is queued like any key, to report it.
    const cached = this.homes
      ? this.cache.keys().filter((key) => !key.startsWith('User/') || this.cache.get(key)?.ok !== true)
      : this.cache.keys();
    const users = this.homes && this.active ? await this.homes.sweep(snapshot) : [];
    const keys = new Set([...cached, ...users, ...owned, ...vanished, ...changed]);
    this.log.debug({ reason, keys: keys.size, users: users.length }, 'full sync');
    if (!this.active) return;
    for (const key of keys) this.enqueue(key);
  }

  /**
   * Lists the store again and queues what changed since the cache was read. Never throws. Waits
   * until the queues are idle first: at startup the subscription goes live while the first sync
   * is still being worked off, and a second listing of ten thousand records then would only slow
   * that down; edits made meanwhile are queued once it is done.
   */
  private async relistStore(): Promise<void> {
    await this.bothIdle();
    if (this.stopping) return;
    let changed: string[];
    try {
      changed = await this.cache.refreshAll();
      this.storeUp();
    } catch (error) {
      this.storeUnavailable(error);
      return;
    }
    if (changed.length > 0) this.log.debug({ keys: changed.length }, 'store relisted');
    if (this.active) for (const key of changed) this.enqueue(key);
  }

  private storeUnavailable(error: unknown): void {
    if (this.storeDown) return;
    this.storeDown = true;
    this.status.outageBegan();
    const code = error instanceof SwarmkeeperError ? error.code : undefined;
    this.log.error(
      { err: describeError(error), ...(code !== undefined && { code }) },
      'desired store unavailable; repairing from cached state',
    );
  }

  private storeUp(): void {
    if (!this.storeDown) return;
    this.storeDown = false;
    this.log.info({ heldBackStatus: this.status.takeHeldBack() }, 'desired store available again');
  }

  /** The one place a reconcile's outcome is logged. */
  private onOutcome(outcome: ReconcileOutcome<string>): void {
    const [kind = '', ...rest] = outcome.key.split('/');
    const fields = { kind, name: rest.join('/'), durationMs: Math.round(outcome.durationMs) };
    const { result } = outcome;
    const observer = this.options.observer;
    if (observer && isKind(kind)) {
      observer.reconciled(kind, result.type, outcome.durationMs / 1000);
      observer.queueDepth(this.queueDepth);
      if (result.type === 'retry') observer.retried();
    }
    if (result.type === 'retry' || result.type === 'terminal') {
      const error = result.error;
      const code = error instanceof SwarmkeeperError ? error.code : undefined;
      const log = result.type === 'retry' ? this.log.warn.bind(this.log) : this.log.error.bind(this.log);
      log(
        {
          ...fields,
          err: describeError(error),
          code,
          retries: outcome.retries,
          requeueInMs: outcome.requeueInMs,
        },
        'reconcile failed',
      );
      return;
    }
    this.log.debug({ ...fields, result: result.type }, 'reconciled');
  }
}

/** Keys of every object this deployment owns, so deleted resources get their objects removed. */
function ownedKeys(snapshot: ObservedSnapshot, owner: string): string[] {
  const owns = (labels: Readonly<Record<string, string>> | null | undefined): boolean =>
    labels?.[LABELS.managed] === 'true' && labels[LABELS.owner] === owner;
  const keys: string[] = [];
  for (const [name, service] of snapshot.services) {
    if (!owns(service.labels)) continue;
    // A job belongs to its HomeFolders: found here, a job of a deleted one is removed.
    const checked = service.labels[LABELS.volumeCheck];
    keys.push(checked === undefined ? `Service/${name}` : `HomeFolders/${checked}`);
  }
  for (const [name, network] of snapshot.networks) if (owns(network.Labels)) keys.push(`Network/${name}`);
  for (const [name, volume] of snapshot.volumes) if (owns(volume.Labels)) keys.push(`Volume/${name}`);
  for (const [name, container] of snapshot.containers)
    if (owns(container.Labels)) keys.push(`Container/${name}`);
  for (const config of snapshot.configs.values()) {
    const resource = config.Spec?.Labels?.[LABELS.resource];
    if (resource && owns(config.Spec?.Labels)) keys.push(`Config/${resource}`);
  }
  for (const secret of snapshot.secrets.values()) {
    const resource = secret.Spec?.Labels?.[LABELS.resource];
    if (resource && owns(secret.Spec?.Labels)) keys.push(`Secret/${resource}`);
  }
  return keys;
}

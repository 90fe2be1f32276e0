/**
 * Reconciles per-user home folders: for each User, the folder on its HomeFolders export (owner,
 * mode, e-mail file), its quota, and its per-user Docker volume; for a deleted User, Retain or
 * Archive (never delete); and discovery of users nobody registered, from the services the hub
 * spawns. Quota usage is read with one `report` per resync.
 */
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { FaultInjector } from '../actuate/types.js';
import type { ArchiveEntry, ArchiveJournal } from '../desired/journal.js';
import type { ProjectIdAllocator } from '../desired/project-ids.js';
import type { DesiredStore, DriftEntry } from '../desired/store.js';
import { NotFoundError, StoreUnavailableError, describeError } from '../errors.js';
import { FolderManager, type FolderStamp, type StampPaths } from '../homes/folders.js';
import { folderName } from '../homes/naming.js';
import { QuotaBatcher } from '../homes/quota/batcher.js';
import {
  DEFAULT_FOLDERS_PER_RESYNC,
  inSweepWindow,
  resyncsPerFullSweep,
  sweepWindow,
} from '../homes/sweep-window.js';
import type { QuotaDriver, QuotaUsage } from '../homes/quota/driver.js';
import { ensureUserVolume, templatePattern, userVolumeFor } from '../homes/user-volume.js';
import type { Logger } from '../log.js';
import type { ObservedService, ObservedSnapshot, ObservedVolume } from '../observed/reader.js';
import { desiredFolderFor, hasConflict, planHomeFolder, planRemoval } from '../reconcile/home-folder.js';
import { ANNOTATIONS, API_VERSION } from '../resources/metadata.js';
import { parseBytes } from '../resources/units.js';
import { validateResource, type ResourceOf } from '../resources/resource.js';
import type { DesiredCache } from './desired-cache.js';
import type { PruneGate } from './prune-gate.js';
import type { ActionExecutor } from './reconciler.js';
import type { SnapshotCache } from './snapshot-cache.js';
import type { StatusWriter } from './status-writer.js';
import type { VolumeCheckJobs } from './volume-jobs.js';
import { ReconcileResult } from './workqueue.js';

type Homes = ResourceOf<'HomeFolders'>;
type User = ResourceOf<'User'>;

export interface HomeReconcilerOptions {
  readonly cache: DesiredCache;
  readonly store: DesiredStore;
  readonly status: StatusWriter;
  readonly snapshots: SnapshotCache;
  readonly executor: ActionExecutor;
  readonly allocator: ProjectIdAllocator;
  /** The quota backend for one HomeFolders resource, from its `quota.driver`. */
  readonly quotaDriverFor: (homes: Homes) => QuotaDriver;
  readonly gate: PruneGate;
  readonly log: Logger;
  readonly enqueue: (key: string) => void;
  readonly wallClock?: () => Date;
  /** Tests: fault points of the folder archive. */
  readonly faultInjector?: FaultInjector;
  /** Per-user volumes on the other nodes; absent, only the controller's engine is checked. */
  readonly volumeChecks?: VolumeCheckJobs;
  /** Archives in progress, so one interrupted by a crash is finished at the next start. */
  readonly archives?: ArchiveJournal;
  /** Settled users whose folder a resync `lstat`s; 0 for all (see src/homes/sweep-window.ts). */
  readonly foldersPerResync?: number;
}

/** What one HomeFolders export needs at run time; rebuilt when its spec changes. */
interface Export {
  readonly fingerprint: string;
  readonly folders: FolderManager;
  readonly quota: QuotaDriver;
  readonly batcher: QuotaBatcher;
  /** From the last `report`, by project (folder) name. */
  usage: Map<string, QuotaUsage>;
  /** Folders whose quota change is with the batcher now. */
  readonly settingQuota: Set<string>;
}

/**
 * A User last found fully in sync, and what it was found with. A resync looks at the User again
 * only when something here moved: the User or HomeFolders record (by identity: the desired cache
 * keeps the object of an unchanged record), the quota report's line, the per-user volume, or the
 * lstat stamp of the folder and e-mail file (any chown, chmod, write or replacement moves it).
 */
interface Settled {
  readonly user: User;
  readonly homes: Homes;
  readonly runtime: Export;
  readonly folder: string;
  readonly paths: StampPaths;
  readonly stamp: FolderStamp;
  readonly hardLimitBytes: number | undefined;
  readonly usedBytes: number | undefined;
  readonly volume?: { readonly name: string; readonly stamp: string | undefined };
}

/** What a per-user volume was found as: recreated with other options, or removed, it differs. */
function volumeStamp(volume: ObservedVolume | undefined): string | undefined {
  return volume === undefined ? undefined : JSON.stringify([volume.Driver, volume.Options, volume.Labels]);
}

/** Users checked between two yields to the event loop during a sweep. */
const SWEEP_CHUNK = 1000;

/** A missing root is usually an NFS mount not there yet: look again soon, but not in a tight loop. */
const ROOT_RETRY_MS = 10_000;
const VOLUME_IN_USE_RETRY_MS = 30_000;
/** A volume check job of a deleted HomeFolders that could not be removed is tried again this late. */
const JOB_REMOVAL_RETRY_MS = 30_000;

export class HomeReconciler {
  private readonly exports = new Map<string, Export>();
  private readonly wallClock: () => Date;
  /** Users whose archive this process is doing now: `resumeArchives` leaves them alone. */
  private readonly archiving = new Set<string>();
  /** Users whose interrupted archive could not be finished yet (logged once). */
  private readonly resumeFailed = new Set<string>();
  /** Quota changes handed to the batcher and not finished yet; `drain` waits for them. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Users last found in sync, by name; see {@link Settled}. */
  private readonly settled = new Map<string, Settled>();
  /** The HomeFolders object each export's users were last queued for. */
  private readonly queuedFor = new Map<string, Homes>();
  /** Index in the User list where the next sweep's window of folders starts. */
  private sweepCursor = 0;

  constructor(private readonly options: HomeReconcilerOptions) {
    this.wallClock = options.wallClock ?? (() => new Date());
  }

  /** Reads usage for every export: one quota `report` each. Called once per resync. */
  async refreshUsage(): Promise<void> {
    for (const homes of this.options.cache.resources('HomeFolders')) {
      const runtime = this.exportFor(homes);
      try {
        runtime.usage = keepUnchanged(runtime.usage, await runtime.quota.report());
      } catch (error) {
        this.options.log.warn(
          { kind: 'HomeFolders', name: homes.metadata.name, err: describeError(error) },
          'quota report failed',
        );
      }
    }
  }

  async reconcileHomeFolders(homes: Homes): Promise<ReconcileResult> {
    const { name } = homes.metadata;
    const runtime = this.exportFor(homes);
    try {
      await runtime.folders.requireRoot();
    } catch (error) {
      await this.options.status.write('HomeFolders', name, {
        sync: 'Error',
        health: 'Degraded',
        message: describeError(error),
      });
      return ReconcileResult.requeueAfter(ROOT_RETRY_MS);
    }
    const users = this.usersOf(homes);
    // A changed spec applies to every user now; otherwise the resync's sweep picks out the users to look at.
    if (this.queuedFor.get(name) !== homes) {
      this.queuedFor.set(name, homes);
      for (const user of users) this.options.enqueue(`User/${user.metadata.name}`);
    }
    const nodes = await this.options.volumeChecks?.reconcile(homes, userOfFolder(homes, users));
    await this.options.status.write('HomeFolders', name, {
      sync: nodes?.inSync === false ? 'OutOfSync' : 'Synced',
      health: nodes?.running ? 'Progressing' : 'Healthy',
      message: [`${users.length} users`, this.sweepMessage(), nodes?.message].filter(Boolean).join('; '),
      lastSyncedAt: this.now(),
      ...(nodes && { nodes: nodes.nodes }),
    });
    return nodes?.requeueAfterMs === undefined
      ? ReconcileResult.done()
      : ReconcileResult.requeueAfter(nodes.requeueAfterMs);
  }

  /**
   * The users a resync must reconcile: every one not settled (never found in sync, or changed
   * since), plus those whose quota line or volume moved, plus those in this resync's window of
   * folders whose lstat stamp moved. No I/O but two lstat calls per user in the window, so the
   * cost of a resync is bounded whatever the number of users (see src/homes/sweep-window.ts).
   * Call after {@link refreshUsage}, with the snapshot the resync just read.
   */
  async sweep(snapshot: ObservedSnapshot | undefined): Promise<string[]> {
    const due: string[] = [];
    const users = this.options.cache.resourceList('User');
    const window = sweepWindow(this.sweepCursor, users.length, this.foldersPerResync);
    this.sweepCursor = window.next;
    for (let i = 0; i < users.length; i++) {
      if (i > 0 && i % SWEEP_CHUNK === 0) await yieldToLoop();
      const user = users[i] as User;
      if (!this.stillSettled(user, snapshot, inSweepWindow(window, i, users.length))) {
        this.settled.delete(user.metadata.name);
        due.push(`User/${user.metadata.name}`);
      }
    }
    // Users deleted while their removal never ran here (another replica led) leave entries behind.
    if (this.settled.size > users.length) {
      const present = new Set(users.map((u) => u.metadata.name));
      for (const name of this.settled.keys()) if (!present.has(name)) this.settled.delete(name);
    }
    return due;
  }

  private get foldersPerResync(): number {
    return this.options.foldersPerResync ?? DEFAULT_FOLDERS_PER_RESYNC;
  }

  /** Says how late a folder changed by hand may be found, once that is more than one resync. */
  private sweepMessage(): string | undefined {
    const resyncs = resyncsPerFullSweep(
      this.options.cache.resourceList('User').length,
      this.foldersPerResync,
    );
    return resyncs > 1 ? `each folder looked at on disk every ${resyncs} resyncs` : undefined;
  }

  private stillSettled(user: User, snapshot: ObservedSnapshot | undefined, lookOnDisk: boolean): boolean {
    const s = this.settled.get(user.metadata.name);
    if (s?.user !== user) return false;
    const homes = this.homesOf(user);
    if (homes !== s.homes || this.exports.get(homes.metadata.name) !== s.runtime) return false;
    const usage = s.runtime.usage.get(s.folder);
    if (usage?.hardLimitBytes !== s.hardLimitBytes || usage?.usedBytes !== s.usedBytes) return false;
    if (s.volume && (!snapshot || volumeStamp(snapshot.volumes.get(s.volume.name)) !== s.volume.stamp))
      return false;
    if (!lookOnDisk) return true;
    try {
      return s.runtime.folders.stamp(s.paths) === s.stamp;
    } catch {
      return false;
    }
  }

  async reconcileUser(user: User): Promise<ReconcileResult> {
    const { name } = user.metadata;
    this.settled.delete(name);
    const log = this.options.log.child({ kind: 'User', name });
    const homes = this.homesOf(user);
    if (typeof homes === 'string') {
      await this.options.status.write('User', name, { sync: 'Pending', message: homes });
      return ReconcileResult.requeueAfter(ROOT_RETRY_MS);
    }
    const naming = folderName(name, homes.spec.naming ?? 'plain');
    if (!naming.ok) {
      await this.options.status.write('User', name, {
        sync: 'Invalid',
        message: `metadata.name: ${naming.reason}`,
      });
      return ReconcileResult.done();
    }
    const folder = naming.folder;
    const runtime = this.exportFor(homes);

    let observed;
    let stamp: FolderStamp;
    try {
      ({ observed, stamp } = await runtime.folders.observeStamped(folder));
    } catch (error) {
      return this.failed(user, error, ROOT_RETRY_MS);
    }
    const plan = planHomeFolder(
      desiredFolderFor(homes.spec, { name, email: user.spec.email }, folder),
      observed,
    );
    if (hasConflict(plan)) {
      const message = plan.actions.flatMap((a) => (a.type === 'conflict' ? [a.message] : [])).join('; ');
      await this.options.status.write('User', name, { sync: 'Conflict', health: 'Degraded', message });
      return ReconcileResult.done();
    }
    const drift: DriftEntry[] = [...plan.drift];
    if (plan.actions.length > 0) {
      const recreated = observed === undefined && (await this.existedBefore(folder));
      log.info({ drift: plan.drift, action: plan.actions.map((a) => a.type), folder }, 'drift detected');
      if (recreated)
        log.warn(
          { folder },
          'home folder was deleted outside swarmkeeper; recreated empty, its data is lost',
        );
      const started = Date.now();
      try {
        await runtime.folders.apply(plan);
      } catch (error) {
        return this.failed(user, error);
      }
      log.info(
        { verb: observed ? 'updated' : 'created', folder, durationMs: Date.now() - started },
        'home folder repaired',
      );
    }

    const limit = parseBytes(user.spec.quota ?? homes.spec.quota?.default ?? 0) ?? 0;
    const usage = runtime.usage.get(folder);
    let quotaPending = false;
    if ((homes.spec.quota?.driver ?? 'none') !== 'none' && usage?.hardLimitBytes !== limit) {
      const entry: DriftEntry = { path: 'spec.quota', desired: limit, actual: usage?.hardLimitBytes ?? null };
      drift.push(entry);
      quotaPending = true;
      if (!runtime.settingQuota.has(folder)) {
        log.info({ drift: [entry], action: ['setQuota'], folder }, 'drift detected');
        this.setQuota(runtime, user, folder, limit, usage?.usedBytes ?? 0);
      }
    }

    const volume = await this.reconcileVolume(user, homes, folder);
    if (drift.length === 0 && volume.sync === 'Synced' && !volume.acted) {
      // Found in sync without touching anything: the stamp taken before the reads still holds.
      this.settled.set(name, {
        user,
        homes,
        runtime,
        folder,
        paths: runtime.folders.stampPaths(folder),
        stamp,
        hardLimitBytes: usage?.hardLimitBytes,
        usedBytes: usage?.usedBytes,
        ...(volume.observed && { volume: volume.observed }),
      });
    }
    const used = runtime.usage.get(folder)?.usedBytes ?? 0;
    await this.options.status.write('User', name, {
      sync: quotaPending ? 'Pending' : volume.sync,
      health: quotaPending ? 'Progressing' : 'Healthy',
      message: quotaPending
        ? `setting the quota of folder ${folder}`
        : (volume.message ?? `folder ${folder} ready`),
      usedBytes: used,
      quotaBytes: limit,
      lastSyncedAt: this.now(),
      ...(drift.length > 0 && { lastDrift: drift, lastDriftAt: this.now() }),
    });
    return volume.sync === 'OutOfSync'
      ? ReconcileResult.requeueAfter(VOLUME_IN_USE_RETRY_MS)
      : ReconcileResult.done();
  }

  /**
   * Hands the quota change to the batcher without waiting, so the work queue's few workers can
   * gather hundreds of users into one xfs_quota run; the user is looked at again once it is done.
   */
  private setQuota(runtime: Export, user: User, folder: string, limit: number, usedBytes: number): void {
    const key = `User/${user.metadata.name}`;
    const started = Date.now();
    runtime.settingQuota.add(folder);
    const work = runtime.batcher
      .apply({ project: folder, path: runtime.folders.folderPath(folder), hardLimitBytes: limit })
      .then(
        () => {
          runtime.usage.set(folder, { usedBytes, hardLimitBytes: limit });
          this.options.log.info(
            {
              kind: 'User',
              name: user.metadata.name,
              verb: 'updated',
              folder,
              hardLimitBytes: limit,
              durationMs: Date.now() - started,
            },
            'quota set',
          );
        },
        (error: unknown) => {
          this.options.log.warn(
            { kind: 'User', name: user.metadata.name, folder, err: describeError(error) },
            'quota not set',
          );
        },
      )
      .finally(() => {
        runtime.settingQuota.delete(folder);
        this.inFlight.delete(work);
        this.options.enqueue(key);
      });
    this.inFlight.add(work);
  }

  /** Waits for quota changes already handed to xfs_quota, so a stopping controller leaves none half-done. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * A deleted HomeFolders: its folders stay where they are (nothing here deletes data), its volume
   * check jobs go, and so does its status.
   */
  async removeHomeFolders(name: string): Promise<ReconcileResult> {
    if (this.options.volumeChecks && !(await this.options.volumeChecks.removeAll(name)))
      return ReconcileResult.requeueAfter(JOB_REMOVAL_RETRY_MS);
    this.queuedFor.delete(name);
    await this.options.status.clear('HomeFolders', name);
    return ReconcileResult.done();
  }

  /**
   * A deleted User: its data is never deleted. Retain leaves the folder, Archive moves it under
   * `<root>/.archive/`; either way the quota is lifted. Held by the prune guard like any removal.
   */
  async removeUser(name: string, lastSeen: User | undefined): Promise<ReconcileResult> {
    this.settled.delete(name);
    if (!lastSeen) return ReconcileResult.done();
    const homes = this.homesOf(lastSeen);
    if (typeof homes === 'string') return ReconcileResult.done();
    const naming = folderName(name, homes.spec.naming ?? 'plain');
    if (!naming.ok) return ReconcileResult.done();
    const verdict = await this.options.gate.check();
    if (!verdict.allowed) return ReconcileResult.requeueAfter(ROOT_RETRY_MS);

    const runtime = this.exportFor(homes);
    const folder = naming.folder;
    const log = this.options.log.child({ kind: 'User', name });
    const observed = await runtime.folders.observe(folder);
    const decision = planRemoval(homes.spec.reclaimPolicy ?? 'Retain', observed);
    if (decision === 'archive') {
      const now = this.wallClock();
      const entry: ArchiveEntry = {
        user: name,
        homes: homes.metadata.name,
        folder,
        target: await runtime.folders.archiveName(folder, now),
        startedAt: now.toISOString(),
      };
      // Written down before anything changes: a crash from here on is finished at the next start.
      this.archiving.add(name);
      try {
        await this.options.archives?.save(entry);
        await this.finishArchive(entry, runtime, log);
      } finally {
        this.archiving.delete(name);
      }
      return ReconcileResult.done();
    }
    await this.releaseQuota(runtime, folder);
    log.info({ verb: 'retained', folder }, 'home folder retained');
    await this.options.status.write('User', name, {
      sync: 'Retained',
      message: `folder ${runtime.folders.folderPath(folder)} kept; adding the user back reuses it`,
    });
    return ReconcileResult.done();
  }

  /**
   * Finishes the archives a controller was killed in the middle of (see {@link ArchiveJournal}),
   * once the desired state is loaded. One whose User is back and whose folder has not moved yet is
   * dropped: the folder stays the user's.
   */
  async resumeArchives(): Promise<void> {
    const journal = this.options.archives;
    if (!journal) return;
    let entries: ArchiveEntry[];
    try {
      entries = await journal.list();
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw error;
      // Edited by hand into something unreadable: say so once; the folders stay where they are.
      if (!this.resumeFailed.has(''))
        this.options.log.error({ err: describeError(error) }, 'archive journal unreadable');
      this.resumeFailed.add('');
      return;
    }
    for (const entry of entries) {
      if (this.archiving.has(entry.user)) continue;
      try {
        await this.resumeArchive(journal, entry);
        this.resumeFailed.delete(entry.user);
      } catch (error) {
        if (error instanceof StoreUnavailableError) throw error;
        // Kept for the next resync (a root not mounted yet, say); said once, not on every pass.
        if (!this.resumeFailed.has(entry.user))
          this.options.log.warn(
            { kind: 'User', name: entry.user, folder: entry.folder, err: describeError(error) },
            'archive not resumed; trying again at the next resync',
          );
        this.resumeFailed.add(entry.user);
      }
    }
  }

  private async resumeArchive(journal: ArchiveJournal, entry: ArchiveEntry): Promise<void> {
    const homes = this.options.cache.resources('HomeFolders').find((h) => h.metadata.name === entry.homes);
    if (!homes) throw new NotFoundError(`HomeFolders ${entry.homes} of an archive in progress`);
    const runtime = this.exportFor(homes);
    const back = this.options.cache.get(`User/${entry.user}`) !== undefined;
    if (back && (await runtime.folders.observe(entry.folder)) !== undefined) {
      await journal.clear(entry.user);
      return;
    }
    const log = this.options.log.child({ kind: 'User', name: entry.user });
    await this.finishArchive(entry, runtime, log, true);
  }

  /** Lifts the quota, moves folder and e-mail file (each step skipped when done), writes status, clears the entry. */
  private async finishArchive(
    entry: ArchiveEntry,
    runtime: Export,
    log: Logger,
    resumed = false,
  ): Promise<void> {
    await this.releaseQuota(runtime, entry.folder);
    const target = await runtime.folders.moveToArchive(entry.folder, entry.target);
    log.info(
      { verb: 'archived', folder: entry.folder, target, ...(resumed && { resumed }) },
      'home folder archived',
    );
    await this.options.status.write('User', entry.user, {
      sync: 'Archived',
      message: `folder moved to ${target}`,
    });
    await this.options.archives?.clear(entry.user);
  }

  private async releaseQuota(runtime: Export, folder: string): Promise<void> {
    const id = (await this.options.allocator.lookup([folder])).get(folder);
    if (id !== undefined)
      await runtime.quota.release([{ project: folder, id, path: runtime.folders.folderPath(folder) }]);
  }

  /**
   * A service nobody declared (the hub spawned it) that mounts a per-user volume on one of our
   * exports: make sure the folder exists now, so the task's next try finds it, and record the
   * User when its name can be told from the folder.
   */
  async discover(service: ObservedService): Promise<void> {
    for (const homes of this.options.cache.resources('HomeFolders')) {
      for (const folder of foldersMountedBy(service, homes)) {
        const runtime = this.exportFor(homes);
        const observed = await runtime.folders.observe(folder);
        if (observed) continue;
        const naming = homes.spec.naming ?? 'plain';
        const username =
          naming === 'plain' ? folder : naming === 'escaped' ? unescapeFolder(folder) : undefined;
        const plan = planHomeFolder(
          desiredFolderFor({ ...homes.spec, emailFile: false }, { name: username ?? folder }, folder),
          undefined,
        );
        await runtime.folders.apply(plan);
        this.options.log.info(
          { kind: 'User', name: username ?? folder, service: service.name, folder, verb: 'created' },
          'home folder created for a discovered user',
        );
        if (username !== undefined && !this.options.cache.get(`User/${username}`)) {
          await this.recordDiscovered(username, homes);
        }
      }
    }
  }

  private async recordDiscovered(username: string, homes: Homes): Promise<void> {
    const result = validateResource({
      apiVersion: API_VERSION,
      kind: 'User',
      metadata: { name: username, annotations: { [ANNOTATIONS.discovered]: 'true' } },
      spec: { homeFolders: homes.metadata.name },
    });
    if (!result.ok) return;
    await this.options.store.apply([result.resource]);
  }

  /** The per-user Docker volume from the template, on the engine the controller talks to. */
  private async reconcileVolume(
    user: User,
    homes: Homes,
    folder: string,
  ): Promise<{
    sync: 'Synced' | 'OutOfSync';
    message?: string;
    acted?: boolean;
    observed?: { name: string; stamp: string | undefined };
  }> {
    const template = homes.spec.volume;
    if (!template) return { sync: 'Synced' };
    const volume = userVolumeFor(template, folder);
    if (!volume.ok) return { sync: 'OutOfSync', message: volume.message };
    const volumeName = volume.resource.metadata.name;
    const snapshot = await this.options.snapshots.get();
    const current = snapshot.volumes.get(volumeName);
    const observed = { name: volumeName, stamp: volumeStamp(current) };
    const outcome = await ensureUserVolume(this.options.executor, volume.resource, current);
    switch (outcome.state) {
      case 'synced':
        return { sync: 'Synced', acted: false, observed };
      case 'created':
      case 'replaced':
        this.options.snapshots.invalidate();
        this.options.log.info(
          {
            kind: 'User',
            name: user.metadata.name,
            volume: volumeName,
            verb: outcome.report.verb,
            durationMs: outcome.report.durationMs,
          },
          outcome.report.verb,
        );
        return { sync: 'Synced', acted: true, observed };
      case 'inUse':
        return {
          sync: 'OutOfSync',
          message: `volume ${volumeName} differs from the template but is in use: ${user.metadata.name}'s session must restart to pick up the new options`,
        };
      case 'ownData':
        return {
          sync: 'OutOfSync',
          message: `volume ${volumeName} differs from the template but holds its own data; left alone`,
        };
      case 'conflict':
        return { sync: 'OutOfSync', message: outcome.detail };
    }
  }

  private async failed(user: User, error: unknown, retryMs?: number): Promise<ReconcileResult> {
    await this.options.status.write('User', user.metadata.name, {
      sync: 'Error',
      message: describeError(error),
    });
    return retryMs === undefined ? ReconcileResult.retry(error) : ReconcileResult.requeueAfter(retryMs);
  }

  /** A folder whose project ID was allocated before existed before: its loss is worth a warning. */
  private async existedBefore(folder: string): Promise<boolean> {
    try {
      return (await this.options.allocator.lookup([folder])).has(folder);
    } catch {
      return false;
    }
  }

  /** The HomeFolders a user lives on, or why there is none. */
  private homesOf(user: User): Homes | string {
    const all = this.options.cache.resourceList('HomeFolders');
    if (user.spec.homeFolders !== undefined) {
      return (
        all.find((h) => h.metadata.name === user.spec.homeFolders) ??
        `HomeFolders/${user.spec.homeFolders} does not exist`
      );
    }
    if (all.length === 1 && all[0]) return all[0];
    return all.length === 0
      ? 'no HomeFolders resource exists'
      : `several HomeFolders exist (${all.map((h) => h.metadata.name).join(', ')}); set spec.homeFolders`;
  }

  private usersOf(homes: Homes): User[] {
    return this.options.cache.resourceList('User').filter((u) => this.homesOf(u) === homes);
  }

  private exportFor(homes: Homes): Export {
    const fingerprint = JSON.stringify(homes.spec);
    const existing = this.exports.get(homes.metadata.name);
    if (existing?.fingerprint === fingerprint) return existing;
    const quota = this.options.quotaDriverFor(homes);
    const runtime: Export = {
      fingerprint,
      folders: new FolderManager({ root: homes.spec.root, faultInjector: this.options.faultInjector }),
      quota,
      batcher: new QuotaBatcher({ driver: quota, allocator: this.options.allocator }),
      usage: existing?.usage ?? new Map<string, QuotaUsage>(),
      settingQuota: new Set(),
    };
    this.exports.set(homes.metadata.name, runtime);
    return runtime;
  }

  private now(): string {
    return this.wallClock().toISOString();
  }
}

/**
 * Folders of `homes` that a service mounts: a volume whose driver `device` lies under the export
 * (`:/var/nfs/<folder>/` for NFS, `/var/nfs/<folder>` for a bind), or whose name matches the
 * volume template.
 */
export function foldersMountedBy(service: ObservedService, homes: Homes): string[] {
  const template = homes.spec.volume?.name;
  const pattern = template ? templatePattern(template) : undefined;
  const root = path.posix.normalize(homes.spec.root).replace(/\/+$/, '');
  const folders = new Set<string>();
  const task = service.spec.TaskTemplate;
  const mounts = task && 'ContainerSpec' in task ? (task.ContainerSpec?.Mounts ?? []) : [];
  for (const mount of mounts) {
    if (mount.Type !== undefined && mount.Type !== 'volume') continue;
    const device = mount.VolumeOptions?.DriverConfig?.Options?.device;
    if (device !== undefined) {
      const local = path.posix.normalize(device.replace(/^[^/]*:/, ''));
      if (local.startsWith(`${root}/`)) {
        const folder = local.slice(root.length + 1).split('/')[0];
        if (folder) folders.add(folder);
        continue;
      }
    }
    const match = mount.Source && pattern ? pattern.exec(mount.Source) : null;
    if (match?.[1]) folders.add(match[1]);
  }
  return [...folders];
}

/** Names the user of a folder for the per-node volume check; a folder of no known user stays as it is. */
function userOfFolder(homes: Homes, users: readonly User[]): (folder: string) => string {
  let byFolder: Map<string, string> | undefined;
  return (folder) => {
    byFolder ??= new Map(
      users.flatMap((u) => {
        const naming = folderName(u.metadata.name, homes.spec.naming ?? 'plain');
        return naming.ok ? [[naming.folder, u.metadata.name] as const] : [];
      }),
    );
    return byFolder.get(folder) ?? folder;
  };
}

/** Inverts dockerspawner's escaping (`-` plus two hex digits per byte); undefined when it cannot. */
function unescapeFolder(folder: string): string | undefined {
  try {
    const bytes: number[] = [];
    for (let i = 0; i < folder.length; i += 1) {
      const c = folder.charAt(i);
      if (c === '-') {
        const hex = folder.slice(i + 1, i + 3);
        if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else bytes.push(c.charCodeAt(0));
    }
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The new report, with the previous entry object kept wherever the figures are the same. At ten
 * thousand users a fresh map per resync means ten thousand objects outliving the young
 * generation each period, and the major collections they bring cost more than the resync itself.
 */
function keepUnchanged(
  previous: ReadonlyMap<string, QuotaUsage>,
  next: Map<string, QuotaUsage>,
): Map<string, QuotaUsage> {
  if (previous.size === 0) return next;
  for (const [folder, usage] of next) {
    const old = previous.get(folder);
    if (old && old.usedBytes === usage.usedBytes && old.hardLimitBytes === usage.hardLimitBytes)
      next.set(folder, old);
  }
  return next;
}

/**
 * Reconciles one key: read desired (from the cache) and observed (from the shared snapshot),
 * plan with the pure core, carry the plan out, write status and log drift and actions.
 * It returns what should happen next; the work queue's outcome handler logs failures, once.
 */
import type { DriftEntry, ResourceStatus } from '../desired/store.js';
import { ERROR_CODES, SwarmkeeperError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ObservedReader, ObservedSnapshot } from '../observed/reader.js';
import { isExecutable, type Actuator } from '../actuate/index.js';
import { isInSync } from '../reconcile/index.js';
import { isKind, type Kind } from '../resources/kinds/index.js';
import { LABELS } from '../resources/metadata.js';
import { specHashOf } from '../reconcile/ownership.js';
import { isVolumeCheckJob } from '../reconcile/volume-check.js';
import type { Resource } from '../resources/resource.js';
import type { DesiredCache } from './desired-cache.js';
import type { HomeReconciler } from './homes.js';
import { buildContext, isDockerResource, planResource, type DockerResource } from './planning.js';
import type { PruneGate, RemovalGrace } from './prune-gate.js';
import type { SnapshotCache } from './snapshot-cache.js';
import type { StatusWriter } from './status-writer.js';
import { ReconcileResult } from './workqueue.js';

/** What the reconciler needs from the actuator: carry out one planned action, or remove an owned object. */
export type ActionExecutor = Pick<Actuator, 'execute' | 'remove'>;

export interface ReconcilerOptions {
  readonly cache: DesiredCache;
  readonly snapshots: SnapshotCache;
  readonly reader: ObservedReader;
  readonly executor: ActionExecutor;
  readonly status: StatusWriter;
  readonly gate: PruneGate;
  readonly grace: RemovalGrace;
  readonly log: Logger;
  /** This deployment's key prefix, carried by every object it creates. */
  readonly owner: string;
  /** Called with keys that depend on a key whose object just changed (services on a recreated network). */
  readonly enqueue: (key: string) => void;
  readonly wallClock?: () => Date;
  /** Users and HomeFolders; absent, they are left Pending. */
  readonly homes?: HomeReconciler;
  /** Told of each drift found, for metrics. */
  readonly onDrift?: (kind: Kind) => void;
}

/** A dependency that is missing is usually being created right now: look again soon. */
const PENDING_RETRY_MS = 2_000;
/** While a service's tasks start, look again to move health from Progressing to Healthy. */
const PROGRESS_RECHECK_MS = 3_000;
/** A volume in use waits for its users' sessions to end, which takes minutes, not seconds. */
const VOLUME_IN_USE_RETRY_MS = 30_000;
/** A config still mounted by a service cannot be removed yet; services move within seconds. */
const PRUNE_RETRY_MS = 3_000;

export class Reconciler {
  private readonly wallClock: () => Date;
  /**
   * Networks being recreated right now. Their services are detached on purpose meanwhile, so
   * reconciling those services would fight the recreate by attaching them again.
   */
  private readonly networksInRecreate = new Set<string>();

  constructor(private readonly options: ReconcilerOptions) {
    this.wallClock = options.wallClock ?? (() => new Date());
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { cache } = this.options;
    const record = cache.get(key);
    const [kindPart = '', ...nameParts] = key.split('/');
    const name = nameParts.join('/');
    if (!isKind(kindPart)) return ReconcileResult.done();
    const kind = kindPart;

    if (!record) return this.reconcileRemoval(key, kind, name);
    this.options.grace.forget(key);
    if (!record.ok) {
      const message = record.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      await this.options.status.write(kind, name, { sync: 'Invalid', message });
      return ReconcileResult.done();
    }
    const resource = record.resource;
    if (isDockerResource(resource)) return this.reconcileResource(resource);
    const homes = this.options.homes;
    if (!homes) {
      await this.options.status.write(kind, name, {
        sync: 'Pending',
        message: 'this controller runs without home folder support',
      });
      return ReconcileResult.done();
    }
    return resource.kind === 'User' ? homes.reconcileUser(resource) : homes.reconcileHomeFolders(resource);
  }

  private async reconcileResource(resource: DockerResource): Promise<ReconcileResult> {
    const { kind } = resource;
    const { name } = resource.metadata;
    const log = this.options.log.child({ kind, name });
    if (resource.kind === 'Service' || resource.kind === 'Container') {
      const busy = (resource.spec.networks ?? [])
        .map((n) => (typeof n === 'string' ? n : n.name))
        .filter((n) => this.networksInRecreate.has(n));
      if (busy.length > 0) {
        await this.options.status.write(kind, name, {
          sync: 'Pending',
          message: `waiting for network ${busy.join(', ')} to be recreated`,
        });
        return ReconcileResult.requeueAfter(PENDING_RETRY_MS);
      }
    }
    const snapshot = await this.options.snapshots.get();
    const context = buildContext(snapshot, [
      ...this.options.cache.resources('Config'),
      ...this.options.cache.resources('Secret'),
    ]);
    const planned = await planResource(resource, this.view(snapshot), context);
    const { actions } = planned;
    const drift = actions.flatMap((a) => ('drift' in a ? a.drift : []));
    const observedHash = specHashOf(resource);

    const first = actions[0];
    if (first?.type === 'conflict') {
      await this.options.status.write(kind, name, {
        sync: 'Conflict',
        health: planned.health.health,
        message: first.reason,
        observedHash,
      });
      return ReconcileResult.done();
    }
    if (first?.type === 'wait') {
      await this.options.status.write(kind, name, {
        sync: 'Pending',
        health: planned.health.health,
        message: `waiting for ${first.missing.join(', ')}`,
      });
      return ReconcileResult.requeueAfter(PENDING_RETRY_MS);
    }

    const work = actions.filter(isExecutable);
    if (work.length > 0) this.options.onDrift?.(kind);
    if (work.length > 0 && drift.length > 0) {
      log.info({ drift: redactDrift(resource, drift), action: work.map((a) => a.type) }, 'drift detected');
    }
    if (work.length > 0 && drift.length === 0 && work.some((a) => a.type === 'create')) {
      log.info(
        { drift: [{ path: '', desired: 'present', actual: 'missing' }], action: ['create'] },
        'drift detected',
      );
    }

    const unsafe = work.find((a) => a.type === 'recreate' && a.kind === 'Volume' && a.dataLoss === true);
    if (unsafe) {
      // The data of a plain local volume lives inside it: recreating would delete it.
      await this.options.status.write(kind, name, {
        sync: 'OutOfSync',
        health: planned.health.health,
        message: `volume options differ (${describePaths(drift)}) but recreating it would delete its data; remove it by hand to let swarmkeeper create it again`,
        observedHash,
        lastDrift: drift,
        lastDriftAt: this.now(),
      });
      return ReconcileResult.done();
    }

    let pruneBlocked = false;
    for (const action of work) {
      const recreatingNetwork = action.type === 'recreate' && action.kind === 'Network';
      if (recreatingNetwork) this.networksInRecreate.add(name);
      try {
        const report = await this.options.executor.execute(action, { kind, name });
        this.options.snapshots.invalidate();
        log.info(
          {
            verb: report.verb,
            object: report.name,
            id: report.id,
            durationMs: report.durationMs,
            detail: report.detail,
          },
          report.verb,
        );
      } catch (error) {
        if (action.type === 'prune' && hasCode(error, ERROR_CODES.DOCKER_IN_USE)) {
          pruneBlocked = true;
          continue;
        }
        if (
          action.type === 'recreate' &&
          action.kind === 'Volume' &&
          hasCode(error, ERROR_CODES.DOCKER_IN_USE)
        ) {
          await this.options.status.write(kind, name, {
            sync: 'OutOfSync',
            health: planned.health.health,
            message: `volume options differ (${describePaths(drift)}) but the volume is in use: ${describeError(error)}; it is recreated once nothing uses it`,
            observedHash,
            lastDrift: drift,
            lastDriftAt: this.now(),
          });
          return ReconcileResult.requeueAfter(VOLUME_IN_USE_RETRY_MS);
        }
        this.options.snapshots.invalidate();
        await this.options.status.write(kind, name, {
          sync: 'Error',
          message: describeError(error),
          ...(drift.length > 0 && { lastDrift: redactDrift(resource, drift), lastDriftAt: this.now() }),
        });
        return ReconcileResult.retry(error);
      } finally {
        if (recreatingNetwork) this.networksInRecreate.delete(name);
      }
    }
    if (work.some((a) => a.type !== 'prune')) this.enqueueDependents(resource);

    const changed = work.length > 0;
    const after = changed ? await this.replan(resource) : planned;
    const status: ResourceStatus = {
      sync: isInSync(after.actions.filter((a) => a.type !== 'prune')) ? 'Synced' : 'OutOfSync',
      health: after.health.health,
      message: after.health.reason ?? '',
      observedHash,
      lastSyncedAt: this.now(),
      ...(drift.length > 0 && { lastDrift: redactDrift(resource, drift), lastDriftAt: this.now() }),
    };
    await this.options.status.write(kind, name, status);
    if (pruneBlocked) return ReconcileResult.requeueAfter(PRUNE_RETRY_MS);
    if (status.health === 'Progressing') return ReconcileResult.requeueAfter(PROGRESS_RECHECK_MS);
    return ReconcileResult.done();
  }

  /** Plans again on a fresh snapshot to report the state the actions left behind. */
  private async replan(resource: DockerResource): Promise<Awaited<ReturnType<typeof planResource>>> {
    const snapshot = await this.options.snapshots.get();
    const context = buildContext(snapshot, [
      ...this.options.cache.resources('Config'),
      ...this.options.cache.resources('Secret'),
    ]);
    return planResource(resource, this.view(snapshot), context);
  }

  /** The key has no desired record: remove the object if this deployment owns it and removal is safe. */
  private async reconcileRemoval(key: string, kind: Kind, name: string): Promise<ReconcileResult> {
    if (kind === 'User') {
      const lastSeen = this.options.cache.lastValidResource(key);
      return this.options.homes && lastSeen?.kind === 'User'
        ? this.options.homes.removeUser(name, lastSeen)
        : ReconcileResult.done();
    }
    if (kind === 'HomeFolders')
      return this.options.homes ? this.options.homes.removeHomeFolders(name) : ReconcileResult.done();
    const dockerKind = kind;
    const snapshot = await this.options.snapshots.get();
    if (kind === 'Service' && this.options.homes) {
      const service = snapshot.services.get(name);
      if (service && !ownsObject(kind, name, snapshot, this.options.owner))
        await this.options.homes.discover(service);
    }
    if (!ownsObject(kind, name, snapshot, this.options.owner)) {
      this.options.grace.forget(key);
      await this.options.status.clear(kind, name);
      return ReconcileResult.done();
    }
    const log = this.options.log.child({ kind, name });
    if (
      kind === 'Volume' &&
      reclaimPolicy(this.options.cache.lastValidResource(key), snapshot, name) !== 'Delete'
    ) {
      this.options.grace.forget(key);
      log.info({ reclaimPolicy: 'Retain' }, 'removal skipped');
      await this.options.status.clear(kind, name);
      return ReconcileResult.done();
    }
    const wait = this.options.grace.remaining(key);
    if (wait > 0) return ReconcileResult.requeueAfter(wait);

    const verdict = await this.options.gate.check();
    if (!verdict.allowed) {
      if (verdict.newlyHeld) log.error({ reason: verdict.reason }, 'removal held by the prune guard');
      return ReconcileResult.requeueAfter(PENDING_RETRY_MS * 5);
    }
    log.info(
      { drift: [{ path: '', desired: 'absent', actual: 'present' }], action: ['remove'] },
      'drift detected',
    );
    const report = await this.options.executor.remove(dockerKind, name);
    this.options.snapshots.invalidate();
    this.options.grace.forget(key);
    log.info({ verb: report.verb, id: report.id, durationMs: report.durationMs }, report.verb);
    await this.options.status.clear(kind, name);
    return ReconcileResult.done();
  }

  /** Services and containers that refer to a network, volume, config or secret that just changed. */
  private enqueueDependents(resource: Resource): void {
    if (
      resource.kind !== 'Network' &&
      resource.kind !== 'Volume' &&
      resource.kind !== 'Config' &&
      resource.kind !== 'Secret'
    ) {
      return;
    }
    const name = resource.metadata.name;
    for (const workload of [
      ...this.options.cache.resources('Service'),
      ...this.options.cache.resources('Container'),
    ]) {
      const spec = workload.spec;
      const uses =
        (resource.kind === 'Network' &&
          (spec.networks ?? []).some((n) => (typeof n === 'string' ? n : n.name) === name)) ||
        (resource.kind === 'Volume' &&
          (spec.mounts ?? []).some((m) => (m.type ?? 'volume') === 'volume' && m.source === name)) ||
        (workload.kind === 'Service' &&
          resource.kind === 'Config' &&
          (workload.spec.configs ?? []).some((c) => c.source === name)) ||
        (workload.kind === 'Service' &&
          resource.kind === 'Secret' &&
          (workload.spec.secrets ?? []).some((c) => c.source === name));
      if (uses) this.options.enqueue(`${workload.kind}/${workload.metadata.name}`);
    }
  }

  private view(snapshot: ObservedSnapshot): {
    snapshot: ObservedSnapshot;
    reader: ObservedReader;
    owner: string;
  } {
    return { snapshot, reader: this.options.reader, owner: this.options.owner };
  }

  private now(): string {
    return this.wallClock().toISOString();
  }
}

function describePaths(drift: readonly DriftEntry[]): string {
  return drift.map((d) => d.path).join(', ');
}

function hasCode(error: unknown, code: string): boolean {
  return error instanceof SwarmkeeperError && error.code === code;
}

/** Secret values never reach logs or status: drift on a Secret reports paths only. */
function redactDrift(resource: Resource, drift: readonly DriftEntry[]): DriftEntry[] {
  if (resource.kind !== 'Secret') return [...drift];
  return drift.map((d) => ({ path: d.path, desired: '[redacted]', actual: '[redacted]' }));
}

function ownedLabels(labels: Readonly<Record<string, string>> | null | undefined, owner: string): boolean {
  return labels?.[LABELS.managed] === 'true' && labels[LABELS.owner] === owner;
}

/** Whether this deployment created the object under that name; the only objects removal may touch. */
export function ownsObject(kind: Kind, name: string, snapshot: ObservedSnapshot, owner: string): boolean {
  switch (kind) {
    case 'Service': {
      const labels = snapshot.services.get(name)?.labels;
      return ownedLabels(labels, owner) && !isVolumeCheckJob(labels);
    }
    case 'Network':
      return ownedLabels(snapshot.networks.get(name)?.Labels, owner);
    case 'Volume':
      return ownedLabels(snapshot.volumes.get(name)?.Labels, owner);
    case 'Container':
      return ownedLabels(snapshot.containers.get(name)?.Labels, owner);
    case 'Config':
      return [...snapshot.configs.values()].some(
        (c) => c.Spec?.Labels?.[LABELS.resource] === name && ownedLabels(c.Spec.Labels, owner),
      );
    case 'Secret':
      return [...snapshot.secrets.values()].some(
        (s) => s.Spec?.Labels?.[LABELS.resource] === name && ownedLabels(s.Spec.Labels, owner),
      );
    case 'HomeFolders':
    case 'User':
      return false;
  }
}

/** The policy of the resource as last seen, else the one recorded on the volume when it was created. */
function reclaimPolicy(lastSeen: Resource | undefined, snapshot: ObservedSnapshot, name: string): string {
  if (lastSeen?.kind === 'Volume') return lastSeen.spec.reclaimPolicy ?? 'Retain';
  return snapshot.volumes.get(name)?.Labels?.[LABELS.reclaimPolicy] ?? 'Retain';
}

/**
 * The per-node volume check, controller side. The controller checks per-user volumes on the
 * engine it talks to; volumes on every other node are checked by a Swarm global job that it
 * starts when a HomeFolders' volume template changes (see src/reconcile/volume-check.ts for the
 * rules). The job's service carries the HomeFolders name and the template hash as labels, so a
 * restarted controller (or a new leader) picks a running job up again without any Redis state.
 * Creating and removing jobs goes through the guarded executor: only the leader does it.
 */
import type { NodeVolumeCheck } from '../desired/store.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ObservedReader, ObservedService, ObservedSnapshot } from '../observed/reader.js';
import {
  decideVolumeCheck,
  isTaskDone,
  jobFinished,
  nodeOutcomes,
  parseVolumeCheckResults,
  summariseNodes,
  templateHashOf,
  volumeCheckJobName,
  volumeCheckJobSpec,
  type ObservedJob,
} from '../reconcile/volume-check.js';
import { LABELS } from '../resources/metadata.js';
import type { ResourceOf } from '../resources/resource.js';
import type { ActionExecutor } from './reconciler.js';
import type { SnapshotCache } from './snapshot-cache.js';

type Homes = ResourceOf<'HomeFolders'>;

export interface VolumeCheckJobsOptions {
  readonly snapshots: SnapshotCache;
  readonly reader: Pick<ObservedReader, 'nodes' | 'inspectService' | 'serviceLogs'>;
  readonly executor: ActionExecutor;
  readonly log: Logger;
  /** This deployment's key prefix: the owner label of the jobs and of the volumes they create. */
  readonly owner: string;
  /** The swarmkeeper image the job runs (SWARMKEEPER_IMAGE); without it no job is started. */
  readonly image: string | undefined;
  /** How long after a job started one that left a node unsettled is run again (default 10 min). */
  readonly rerunAfterMs?: number;
  /** A job still unfinished after this long counts as finished (default 5 min). */
  readonly jobTimeoutMs?: number;
  readonly now?: () => number;
}

/** What the HomeFolders status gets from the check. */
export interface VolumeCheckReport {
  readonly nodes: readonly NodeVolumeCheck[];
  /** False while a node's volumes differ from the template, or its check failed. */
  readonly inSync: boolean;
  /** A job is running. */
  readonly running: boolean;
  readonly message: string;
  /** Look at the HomeFolders again after this long (a job running, a rerun due). */
  readonly requeueAfterMs?: number;
}

const DEFAULT_RERUN_AFTER_MS = 10 * 60_000;
const DEFAULT_JOB_TIMEOUT_MS = 5 * 60_000;
/** While a job runs: its tasks take a few seconds each. */
const JOB_POLL_MS = 2_000;

export class VolumeCheckJobs {
  /** Outcomes of finished jobs, by service ID: a finished job's logs are read once. */
  private readonly finished = new Map<string, readonly NodeVolumeCheck[]>();
  private warnedNoImage = false;
  private readonly now: () => number;

  constructor(private readonly options: VolumeCheckJobsOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Starts a job when one is due, follows the running one, removes jobs a newer finished one
   * replaced, and reports each node's outcome. `userOf` names the user of a folder.
   */
  async reconcile(homes: Homes, userOf: (folder: string) => string): Promise<VolumeCheckReport> {
    const name = homes.metadata.name;
    const snapshot = await this.options.snapshots.get();
    const jobs = this.jobsOf(snapshot, name).sort((a, b) => createdAt(b) - createdAt(a));
    const template = homes.spec.volume;
    if (!template) {
      await this.removeJobs(
        name,
        jobs.filter((job) => this.finished.has(job.id) || allTasksDone(job)),
      );
      return { nodes: [], inSync: true, running: false, message: '' };
    }
    if (this.options.image === undefined) {
      if (!this.warnedNoImage) {
        this.warnedNoImage = true;
        this.options.log.warn(
          { kind: 'HomeFolders', name },
          'volume check job not started: SWARMKEEPER_IMAGE is not set',
        );
      }
      return {
        nodes: [],
        inSync: true,
        running: false,
        message: 'per-user volumes on other nodes are not checked (SWARMKEEPER_IMAGE is not set)',
      };
    }

    const templateHash = templateHashOf(template);
    const now = this.now();
    const nodes = await this.options.reader.nodes();
    const [newest, ...older] = jobs;
    const latest = newest && (await this.observe(homes, newest, nodes, userOf, now));
    if (latest?.finished && older.length > 0) await this.removeJobs(name, older);

    const decision = decideVolumeCheck({
      templateHash,
      latest,
      eligibleNodes: nodes.filter((n) => n.state === 'ready' && n.availability === 'active').map((n) => n.id),
      now,
      rerunAfterMs: this.options.rerunAfterMs ?? DEFAULT_RERUN_AFTER_MS,
    });
    const outcomes = latest?.outcomes ?? [];
    if (decision.action === 'start') {
      await this.start(homes, templateHash, decision.reason, now);
      return {
        nodes: outcomes,
        inSync: true,
        running: true,
        message: 'volume check job started',
        requeueAfterMs: JOB_POLL_MS,
      };
    }
    const summary = summariseNodes(outcomes);
    if (decision.action === 'wait') {
      return {
        nodes: outcomes,
        inSync: summary.inSync,
        running: true,
        message: `volume check job ${latest?.name ?? ''} running; ${summary.message}`,
        requeueAfterMs: JOB_POLL_MS,
      };
    }
    return {
      nodes: outcomes,
      inSync: summary.inSync,
      running: false,
      message: summary.message,
      ...(decision.retryInMs !== undefined && { requeueAfterMs: decision.retryInMs }),
    };
  }

  /** The job as its service, tasks and (once over) result lines show it; logs its end once. */
  private async observe(
    homes: Homes,
    service: ObservedService,
    nodes: Awaited<ReturnType<ObservedReader['nodes']>>,
    userOf: (folder: string) => string,
    now: number,
  ): Promise<ObservedJob> {
    const templateHash = service.labels[LABELS.volumeTemplateHash] ?? '';
    const startedAt = createdAt(service);
    const known = this.finished.get(service.id);
    // The snapshot may predate the job's last task changes; its tasks are read fresh until it ends.
    const fresh = known ? service : ((await this.options.reader.inspectService(service.id)) ?? service);
    const tasks = fresh.tasks;
    const base = { name: service.name, templateHash, startedAt, nodes: nodesOf(fresh) };
    if (known) return { ...base, finished: true, outcomes: known };

    const finished = jobFinished(tasks, startedAt, now, this.options.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS);
    const logs = (await this.options.reader.serviceLogs(service.id)) ?? '';
    const outcomes = nodeOutcomes(tasks, parseVolumeCheckResults(logs, templateHash), nodes, userOf).map(
      (o) =>
        finished && o.state === 'Running'
          ? {
              ...o,
              state: 'Unknown' as const,
              message: `no result after ${Math.round((now - startedAt) / 1000)} s; ${o.message}`,
            }
          : o,
    );
    if (finished) {
      this.finished.set(service.id, outcomes);
      this.options.log.info(
        {
          kind: 'HomeFolders',
          name: homes.metadata.name,
          job: service.name,
          templateHash,
          nodes: outcomes.length,
          synced: outcomes.filter((o) => o.state === 'Synced').length,
          replaced: outcomes.reduce((sum, o) => sum + o.replaced.length, 0),
          inUse: outcomes.flatMap((o) => o.inUse.map((u) => `${u.user}@${o.hostname || o.node}`)),
          failed: outcomes
            .filter((o) => o.state === 'Failed' || o.state === 'Unknown')
            .map((o) => o.hostname || o.node),
          durationMs: Math.max(0, now - startedAt),
        },
        'volume check job finished',
      );
    }
    return { ...base, finished, outcomes };
  }

  private async start(homes: Homes, templateHash: string, reason: string, now: number): Promise<void> {
    const template = homes.spec.volume;
    const image = this.options.image;
    if (!template || image === undefined) return;
    const name = volumeCheckJobName(homes.metadata.name, templateHash, now);
    const spec = volumeCheckJobSpec({
      name,
      image,
      ...(homes.metadata.labels && { labels: homes.metadata.labels }),
      input: { homeFolders: homes.metadata.name, owner: this.options.owner, templateHash, volume: template },
    });
    const report = await this.options.executor.execute({ type: 'create', kind: 'Service', body: spec });
    this.options.snapshots.invalidate();
    this.options.log.info(
      {
        kind: 'HomeFolders',
        name: homes.metadata.name,
        job: name,
        id: report.id,
        templateHash,
        reason,
        image,
      },
      'volume check job started',
    );
  }

  /**
   * Removes every job of a HomeFolders that no longer exists, running or not: what it checks is
   * gone, and a HomeFolders created again starts its own. False when one could not be removed yet.
   */
  async removeAll(homesName: string): Promise<boolean> {
    const snapshot = await this.options.snapshots.get();
    return this.removeJobs(homesName, this.jobsOf(snapshot, homesName));
  }

  private jobsOf(snapshot: ObservedSnapshot, homesName: string): ObservedService[] {
    return [...snapshot.services.values()].filter(
      (s) => s.labels[LABELS.volumeCheck] === homesName && s.labels[LABELS.owner] === this.options.owner,
    );
  }

  /** Jobs a newer finished one replaced (their outcome is no longer what the nodes look like), or of a deleted HomeFolders. */
  private async removeJobs(homesName: string, jobs: readonly ObservedService[]): Promise<boolean> {
    let removedAll = true;
    for (const job of jobs) {
      try {
        await this.options.executor.remove('Service', job.name);
        this.finished.delete(job.id);
        this.options.log.info(
          { kind: 'HomeFolders', name: homesName, job: job.name, verb: 'removed' },
          'volume check job removed',
        );
      } catch (error) {
        // The next reconcile tries again; nothing depends on the old job being gone.
        removedAll = false;
        this.options.log.warn(
          { kind: 'HomeFolders', name: homesName, job: job.name, err: describeError(error) },
          'volume check job not removed',
        );
      }
    }
    if (jobs.length > 0) this.options.snapshots.invalidate();
    return removedAll;
  }
}

function createdAt(service: ObservedService): number {
  const time = Date.parse(service.inspect.CreatedAt ?? '');
  return Number.isNaN(time) ? 0 : time;
}

function nodesOf(service: ObservedService): string[] {
  return [...new Set(service.tasks.flatMap((t) => (t.nodeId === undefined ? [] : [t.nodeId])))];
}

function allTasksDone(service: ObservedService): boolean {
  return service.tasks.every(isTaskDone);
}

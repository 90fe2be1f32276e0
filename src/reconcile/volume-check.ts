/**
 * The per-node volume check, pure parts. Docker never updates the options of an existing volume
 * (docker/cli #1279), and the controller only sees the volumes of the engine it talks to, so when
 * a HomeFolders volume template changes it starts a Swarm global job: one task per node runs
 * `swarmkeeper homes check-volumes` against that node's engine and prints one JSON result line.
 * This module builds the job's service spec, reads the result lines back, merges them with the
 * job's tasks into per-node status, and decides when a job has to run.
 */
import type { ServiceSpec } from 'dockerode';
import { z } from 'zod';
import type { NodeCheckState, NodeVolumeCheck } from '../desired/store.js';
import { homeFoldersSpec } from '../resources/kinds/homefolders.js';
import { LABELS } from '../resources/metadata.js';
import { hashValue } from './hash.js';

/** The environment variable carrying the job's input (JSON; no secret is involved). */
export const VOLUME_CHECK_ENV = 'SWARMKEEPER_VOLUME_CHECK';
/** `kind` of a result line, so a log line of anything else is never taken for a result. */
export const VOLUME_CHECK_RESULT_KIND = 'swarmkeeper/volume-check-result';
/** The Docker socket the job's tasks talk to, bind-mounted from their node. */
export const DOCKER_SOCKET_PATH = '/var/run/docker.sock';

/** What the job's tasks say, as the observed side reads them (`ObservedTask`). */
export interface JobTask {
  readonly nodeId: string | undefined;
  /** `new` … `running`, `complete`, `failed`, `rejected`, `shutdown`, ... */
  readonly state: string;
  readonly message: string | undefined;
  readonly error: string | undefined;
  readonly exitCode: number | undefined;
  /** RFC 3339, when the task last changed state. */
  readonly timestamp: string | undefined;
}

const volumeTemplate = homeFoldersSpec.shape.volume.unwrap();
export type VolumeTemplate = z.infer<typeof volumeTemplate>;

export const volumeCheckInput = z.strictObject({
  homeFolders: z.string().min(1),
  /** The deployment's key prefix: the owner label on volumes the job creates. */
  owner: z.string().min(1),
  templateHash: z.string().min(1),
  volume: volumeTemplate,
});
export type VolumeCheckInput = z.infer<typeof volumeCheckInput>;

const volumeCheckResult = z.object({
  kind: z.literal(VOLUME_CHECK_RESULT_KIND),
  homeFolders: z.string(),
  templateHash: z.string(),
  nodeId: z.string(),
  hostname: z.string(),
  /** Volumes on the node made from the template. */
  checked: z.number().int().min(0),
  replaced: z.array(z.string()),
  inUse: z.array(z.object({ volume: z.string(), folder: z.string(), detail: z.string() })),
  /** Differ from the template but may hold data of their own, or belong to someone else. */
  kept: z.array(z.object({ volume: z.string(), folder: z.string(), reason: z.string() })),
  errors: z.array(z.object({ volume: z.string().optional(), message: z.string() })),
});
export type VolumeCheckResult = z.infer<typeof volumeCheckResult>;

/**
 * A volume check job's service realises no Service resource: orphan removal must leave it to the
 * HomeFolders reconcile, which removes it once a newer job finished.
 */
export function isVolumeCheckJob(labels: Readonly<Record<string, string>> | null | undefined): boolean {
  return labels?.[LABELS.volumeCheck] !== undefined;
}

/** The hash a job is labelled with: of the template alone, so only a template change reruns it. */
export function templateHashOf(template: VolumeTemplate): string {
  return hashValue({
    name: template.name,
    driver: template.driver ?? 'local',
    driverOpts: template.driverOpts ?? {},
  });
}

/** Docker service names: at most 63 characters. */
const MAX_SERVICE_NAME = 63;

/**
 * `<homes>-vc-<hash8>-<time36>`: the HomeFolders it checks, the template, and when, so a rerun for
 * the same template gets a new name while the previous job's service still exists.
 */
export function volumeCheckJobName(homesName: string, templateHash: string, now: number): string {
  const suffix = `-vc-${templateHash.slice(0, 8)}-${now.toString(36)}`;
  return `${homesName.slice(0, MAX_SERVICE_NAME - suffix.length)}${suffix}`;
}

export interface VolumeCheckJobOptions {
  readonly name: string;
  readonly image: string;
  readonly input: VolumeCheckInput;
  /** The HomeFolders' own labels, carried over as a Service resource's are. */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * The global job. It runs as root inside the container because the group owning the Docker socket
 * differs from node to node and uid 0 owns the socket everywhere; the socket is root on the node
 * anyway. Every capability is dropped but the three the image's node binary carries as file
 * capabilities, without which it cannot be executed at all.
 */
export function volumeCheckJobSpec(options: VolumeCheckJobOptions): ServiceSpec {
  const { input } = options;
  return {
    Name: options.name,
    Labels: {
      ...options.labels,
      [LABELS.managed]: 'true',
      [LABELS.volumeCheck]: input.homeFolders,
      [LABELS.volumeTemplateHash]: input.templateHash,
    },
    Mode: { GlobalJob: {} },
    TaskTemplate: {
      ContainerSpec: {
        Image: options.image,
        Args: ['homes', 'check-volumes'],
        // On the task containers too (Swarm puts only its own labels there): a later task finds
        // this job's finished containers on its node by them and removes them.
        Labels: { [LABELS.volumeCheck]: input.homeFolders, [LABELS.owner]: input.owner },
        Env: [`${VOLUME_CHECK_ENV}=${JSON.stringify(input)}`, 'SWARMKEEPER_LOG_LEVEL=warn'],
        User: '0:0',
        Mounts: [{ Type: 'bind', Source: DOCKER_SOCKET_PATH, Target: DOCKER_SOCKET_PATH }],
        CapabilityDrop: ['ALL'],
        CapabilityAdd: ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER'],
      },
      RestartPolicy: { Condition: 'none' },
      Resources: { Limits: { MemoryBytes: 256 * 1024 * 1024 } },
    },
  };
}

/** The result lines in a job's log, by node ID; a node that printed several keeps its last. */
export function parseVolumeCheckResults(logs: string, templateHash: string): Map<string, VolumeCheckResult> {
  const results = new Map<string, VolumeCheckResult>();
  for (const line of logs.split('\n')) {
    const text = line.trim();
    if (!text.startsWith('{')) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      continue;
    }
    const parsed = volumeCheckResult.safeParse(raw);
    if (parsed.success && parsed.data.templateHash === templateHash)
      results.set(parsed.data.nodeId, parsed.data);
  }
  return results;
}

const TERMINAL_TASK_STATES: ReadonlySet<string> = new Set([
  'complete',
  'failed',
  'rejected',
  'shutdown',
  'orphaned',
  'remove',
]);

export function isTaskDone(task: JobTask): boolean {
  return TERMINAL_TASK_STATES.has(task.state);
}

/** Each node's newest task of the job. */
function latestTaskPerNode(tasks: readonly JobTask[]): Map<string, JobTask> {
  const byNode = new Map<string, JobTask>();
  for (const task of tasks) {
    if (task.nodeId === undefined) continue;
    const seen = byNode.get(task.nodeId);
    if (!seen || (task.timestamp ?? '') > (seen.timestamp ?? '')) byNode.set(task.nodeId, task);
  }
  return byNode;
}

/**
 * Whether the job is over: every task done, or `timeoutMs` passed since it started (a node that
 * went away leaves its task assigned for ever). A job with no task yet is not over until then.
 */
export function jobFinished(
  tasks: readonly JobTask[],
  startedAt: number,
  now: number,
  timeoutMs: number,
): boolean {
  if (now - startedAt >= timeoutMs) return true;
  const latest = [...latestTaskPerNode(tasks).values()];
  return latest.length > 0 && latest.every(isTaskDone);
}

/**
 * One entry per node that got a task: its result line when it printed one, else what the task
 * says. `userOf` turns a folder back into a username (the controller knows its Users; a folder of
 * nobody it knows is shown as it is).
 */
export function nodeOutcomes(
  tasks: readonly JobTask[],
  results: ReadonlyMap<string, VolumeCheckResult>,
  nodes: readonly { readonly id: string; readonly hostname: string }[],
  userOf: (folder: string) => string,
): NodeVolumeCheck[] {
  const hostnames = new Map(nodes.map((n) => [n.id, n.hostname]));
  const outcomes: NodeVolumeCheck[] = [];
  for (const [node, task] of latestTaskPerNode(tasks)) {
    const result = results.get(node);
    const hostname = hostnames.get(node) ?? result?.hostname ?? '';
    if (result) {
      outcomes.push(fromResult(node, hostname, result, userOf));
      continue;
    }
    const state: NodeCheckState = !isTaskDone(task)
      ? 'Running'
      : task.state === 'complete'
        ? 'Unknown'
        : 'Failed';
    const why = task.error ?? task.message ?? '';
    const message =
      state === 'Running'
        ? `task ${task.state}`
        : state === 'Unknown'
          ? 'the task finished without a result line'
          : `task ${task.state}${task.exitCode !== undefined ? ` (exit ${task.exitCode})` : ''}${why ? `: ${why}` : ''}`;
    outcomes.push({ node, hostname, state, replaced: [], inUse: [], message });
  }
  return outcomes.sort((a, b) => a.hostname.localeCompare(b.hostname) || a.node.localeCompare(b.node));
}

function fromResult(
  node: string,
  hostname: string,
  result: VolumeCheckResult,
  userOf: (folder: string) => string,
): NodeVolumeCheck {
  const inUse = result.inUse.map((u) => ({ volume: u.volume, user: userOf(u.folder) }));
  const parts = [`${result.checked} volumes checked`];
  if (result.replaced.length > 0) parts.push(`replaced ${result.replaced.join(', ')}`);
  if (inUse.length > 0)
    parts.push(`in use, differ from the template: ${inUse.map((u) => `${u.user} (${u.volume})`).join(', ')}`);
  for (const kept of result.kept) parts.push(`${kept.volume} left alone: ${kept.reason}`);
  for (const error of result.errors) parts.push(`${error.volume ?? 'error'}: ${error.message}`);
  const state: NodeCheckState =
    result.errors.length > 0 ? 'Failed' : inUse.length > 0 || result.kept.length > 0 ? 'OutOfSync' : 'Synced';
  return { node, hostname, state, replaced: result.replaced, inUse, message: parts.join('; ') };
}

/** One line for the HomeFolders status message, and whether every node is in line with the template. */
export function summariseNodes(nodes: readonly NodeVolumeCheck[]): { inSync: boolean; message: string } {
  if (nodes.length === 0) return { inSync: true, message: '' };
  const count = (state: NodeCheckState): number => nodes.filter((n) => n.state === state).length;
  const users = nodes.flatMap((n) => n.inUse.map((u) => `${u.user} on ${n.hostname || n.node}`));
  const parts = [`volumes on ${count('Synced')}/${nodes.length} nodes match the template`];
  if (users.length > 0) parts.push(`sessions to restart: ${users.join(', ')}`);
  for (const state of ['Running', 'Failed', 'Unknown', 'OutOfSync'] as const) {
    const n = count(state);
    if (n > 0 && !(state === 'OutOfSync' && users.length > 0)) parts.push(`${n} ${state}`);
  }
  return { inSync: nodes.every((n) => n.state === 'Synced'), message: parts.join('; ') };
}

/** A job of one HomeFolders, as its service and tasks show it. */
export interface ObservedJob {
  readonly name: string;
  readonly templateHash: string;
  /** When the service was created (ms since the epoch). */
  readonly startedAt: number;
  readonly finished: boolean;
  /** Nodes that got a task. */
  readonly nodes: readonly string[];
  /** The per-node outcome, known once the job finished. */
  readonly outcomes: readonly NodeVolumeCheck[];
}

export type VolumeCheckDecision =
  | { readonly action: 'start'; readonly reason: 'first-run' | 'template-changed' | 'rerun' }
  /** A job is running: look again in a moment. */
  | { readonly action: 'wait' }
  /** Nothing to start; `retryInMs` when a rerun is due later. */
  | { readonly action: 'none'; readonly retryInMs?: number };

/**
 * When to start a job: the template's hash differs from the last job's (or there is none). Never
 * two at once: two checks with different templates on one node would undo each other. A finished
 * job is run again, `rerunAfterMs` after it started, while a node failed, reported a volume still
 * in use, or is ready and active without having had a task (it joined, or was down, since): a
 * finished global job gives no task to a node that joins later.
 */
export function decideVolumeCheck(input: {
  readonly templateHash: string;
  readonly latest: ObservedJob | undefined;
  /** IDs of nodes that are ready and active. */
  readonly eligibleNodes: readonly string[];
  readonly now: number;
  readonly rerunAfterMs: number;
}): VolumeCheckDecision {
  const { latest } = input;
  if (latest === undefined) return { action: 'start', reason: 'first-run' };
  if (!latest.finished) return { action: 'wait' };
  if (latest.templateHash !== input.templateHash) return { action: 'start', reason: 'template-changed' };
  const covered = new Set(latest.nodes);
  const unsettled =
    input.eligibleNodes.some((node) => !covered.has(node)) ||
    latest.outcomes.some((o) => o.state !== 'Synced');
  if (!unsettled) return { action: 'none' };
  const due = latest.startedAt + input.rerunAfterMs - input.now;
  return due <= 0 ? { action: 'start', reason: 'rerun' } : { action: 'none', retryInMs: due };
}

/**
 * The multi-node Swarm of scripts/cluster-lab.sh for test/cluster: one engine per network
 * namespace, node N at /var/run/docker-skcN.sock, node 1 the manager. Reads go through dockerode,
 * node operations (drain, leave, join) through the docker CLI, as an operator would do them.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { ControllerProcess } from './controller-process.js';
import { engineEventsBetween } from './engine-events.js';
import { buildSwarmkeeperImage } from './image.js';
import { REDIS_URL } from './lab.js';

const run = promisify(execFile);

export const CLUSTER_NODES = [1, 2, 3] as const;
export type ClusterNode = (typeof CLUSTER_NODES)[number];

export const socketOf = (node: ClusterNode): string => `/var/run/docker-skc${node}.sock`;
/** What the controller under test gets as DOCKER_HOST: the manager. */
export const MANAGER_HOST = `unix://${socketOf(1)}`;
export const managerDocker = new Dockerode({ socketPath: socketOf(1) });
/** Node N's own engine: its containers, volumes and images. */
export const dockerOf = (node: ClusterNode): Dockerode =>
  node === 1 ? managerDocker : new Dockerode({ socketPath: socketOf(node) });
const SCRIPT = path.resolve('scripts/cluster-lab.sh');

/** The docker CLI against one node's engine; resolves with trimmed stdout. */
export async function dockerOn(node: ClusterNode, ...args: string[]): Promise<string> {
  return (await run('docker', ['-H', `unix://${socketOf(node)}`, ...args])).stdout.trim();
}

/**
 * `swarmkeeper run` (the real CLI) against the manager, on the shared Redis under `prefix`,
 * resyncing every 2 s; `env` adds to its environment.
 */
export function startClusterController(
  prefix: string,
  env: Readonly<Record<string, string>> = {},
): ControllerProcess {
  return ControllerProcess.start({
    DOCKER_HOST: MANAGER_HOST,
    REDIS_URL,
    SWARMKEEPER_PREFIX: prefix,
    SWARMKEEPER_LEADER_ELECTION: 'false',
    SWARMKEEPER_RESYNC_SECONDS: '2',
    ...env,
  });
}

/**
 * The swarmkeeper image as `tag` in every node's engine: built on the manager, then copied into the
 * workers (no registry: save and load). Returns the nodes that did not have it before, the ones
 * removeImage may take it from.
 */
export async function swarmkeeperImageOnNodes(tag: string): Promise<ClusterNode[]> {
  const added: ClusterNode[] = [];
  for (const node of CLUSTER_NODES) {
    const had = await dockerOf(node)
      .getImage(tag)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (!had) added.push(node);
  }
  await buildSwarmkeeperImage(tag, MANAGER_HOST);
  for (const node of CLUSTER_NODES.filter((n) => n !== 1)) {
    const engine = dockerOf(node);
    const progress = await engine.loadImage(await managerDocker.getImage(tag).get());
    await new Promise<void>((resolve, reject) => {
      engine.modem.followProgress(progress, (error: Error | null) => (error ? reject(error) : resolve()));
    });
  }
  return added;
}

export async function removeImage(tag: string, nodes: readonly ClusterNode[]): Promise<void> {
  for (const node of nodes) await dockerOf(node).getImage(tag).remove();
}

/** Stops the controllers and keeps their lines in test-artifacts/controller-logs/<name>-<n>.jsonl (git-ignored). */
export async function stopAndKeepLogs(
  name: string,
  controllers: readonly ControllerProcess[],
): Promise<void> {
  await mkdir('test-artifacts/controller-logs', { recursive: true });
  for (const [index, controller] of controllers.entries()) {
    await controller.stop();
    await writeFile(
      `test-artifacts/controller-logs/${name}-${index}.jsonl`,
      controller.lines.map((l) => JSON.stringify(l)).join('\n'),
    );
  }
}

export async function clusterLab(...args: string[]): Promise<void> {
  await run('bash', [SCRIPT, ...args]);
}

/** The Swarm node ID the engine of `node` has now (it changes when the node leaves and joins again). */
export async function nodeIdOf(node: ClusterNode): Promise<string> {
  return dockerOn(node, 'info', '--format', '{{.Swarm.NodeID}}');
}

/** The pid of node N's dockerd, from the pidfile the script gives it. */
export async function dockerdPid(node: ClusterNode): Promise<number> {
  return Number((await readFile(`/var/run/docker-skc${node}.pid`, 'utf8')).trim());
}

export interface NodeView {
  readonly state: string;
  readonly availability: string;
}

export async function nodeView(id: string): Promise<NodeView> {
  const node = (await managerDocker.getNode(id).inspect()) as {
    Status?: { State?: string };
    Spec?: { Availability?: string };
  };
  return { state: node.Status?.State ?? 'unknown', availability: node.Spec?.Availability ?? 'unknown' };
}

export interface TaskView {
  readonly id: string;
  readonly nodeId: string;
  readonly state: string;
}

/** Tasks Swarm wants running for a service, with where they are and what state they reached. */
export async function liveTasks(service: string): Promise<TaskView[]> {
  const tasks = (await managerDocker.listTasks({
    filters: JSON.stringify({ service: [service], 'desired-state': ['running'] }),
  })) as { ID: string; NodeID?: string; Status?: { State?: string } }[];
  return tasks.map((t) => ({ id: t.ID, nodeId: t.NodeID ?? '', state: t.Status?.State ?? 'unknown' }));
}

/**
 * The events by which someone changes the Swarm's objects. Not among them: task churn, a node's
 * local copy of an overlay network coming and going as tasks attach (scope `local`), and the
 * `update` Swarm's allocator itself emits for a network (Docker has no network update call).
 */
const WRITES: Readonly<Record<string, ReadonlySet<string>>> = {
  service: new Set(['create', 'update', 'remove']),
  network: new Set(['create', 'remove']),
  config: new Set(['create', 'update', 'remove']),
  secret: new Set(['create', 'update', 'remove']),
  volume: new Set(['create', 'destroy']),
};

export interface WriteEvent {
  readonly type: string;
  readonly action: string;
  readonly name: string;
}

/** Write events on the manager for objects whose name starts with `namePrefix`, between two instants. */
export async function writesBetween(
  namePrefix: string,
  sinceMs: number,
  untilMs: number,
): Promise<WriteEvent[]> {
  const events = await engineEventsBetween((...args) => dockerOn(1, ...args), sinceMs, untilMs);
  return events
    .filter((e) => WRITES[e.Type]?.has(e.Action) === true && (e.Type !== 'network' || e.scope === 'swarm'))
    .map((e) => ({ type: e.Type, action: e.Action, name: e.Actor?.Attributes?.name ?? '' }))
    .filter((e) => e.name.startsWith(namePrefix));
}

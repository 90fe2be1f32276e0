/**
 * The per-node volume check job (issue 4) on the three-engine Swarm of scripts/cluster-lab.sh: the
 * real `swarmkeeper run` against the manager starts a global job of the swarmkeeper image when a
 * HomeFolders volume template changes, each node's task checks that node's own engine, and the
 * HomeFolders status gets one entry per node. The stale per-user volumes live on the workers only,
 * where the controller itself cannot see them: whatever happens to them is the job's doing.
 *
 * Then a node without a task of the finished job: a global job gives none to a node that is
 * drained while it runs (as to one that joins later), and the controller must run the job again
 * once that node is active, so it is checked too.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeVolumeCheck } from '../../src/desired/store.js';
import { LABELS } from '../../src/resources/metadata.js';
import type { Resource } from '../../src/resources/resource.js';
import { ControllerLab } from '../support/controller.js';
import { ensureBuilt, type ControllerProcess } from '../support/controller-process.js';
import {
  dockerOf,
  dockerOn,
  managerDocker,
  nodeIdOf,
  removeImage,
  startClusterController,
  stopAndKeepLogs,
  swarmkeeperImageOnNodes,
  type ClusterNode,
} from '../support/cluster.js';
import { removeTestObjects, startUserSession } from '../support/docker-cleanup.js';
import { eventually } from '../support/eventually.js';
import { TEST_RUN_LABEL, testRunId } from '../support/lab.js';

/** Its own tag: building or removing it never touches an image another test or the demo runs. */
const IMAGE = 'local/swarmkeeper:volume-check-cluster-test';
const WORKERS = [2, 3] as const satisfies readonly ClusterNode[];

let lab: ControllerLab;
const controllers: ControllerProcess[] = [];
/** Nodes whose engine got the image from this test. */
let imageAdded: ClusterNode[] = [];
let work: string;
let root: string;
let old: string;
let homesName: string;
/** Swarm node IDs of nodes 1..3. */
let ids: Record<ClusterNode, string>;
let drained: string | undefined;

beforeAll(async () => {
  await ensureBuilt();
  imageAdded = await swarmkeeperImageOnNodes(IMAGE);
  lab = new ControllerLab('cluster-volume-check', managerDocker);
  await lab.open();
  homesName = lab.name('nfs');
  // The engines share this machine's filesystem: folders made here are what a node's bind mounts see.
  work = await mkdtemp(path.join(tmpdir(), 'sk-cluster-volume-check-'));
  root = path.join(work, 'nfs');
  old = path.join(work, 'old-nfs');
  for (const folder of ['alice', 'bob']) {
    await mkdir(path.join(root, folder), { recursive: true });
    await mkdir(path.join(old, folder), { recursive: true });
  }
  ids = { 1: await nodeIdOf(1), 2: await nodeIdOf(2), 3: await nodeIdOf(3) };
}, 300_000);

afterAll(async () => {
  // The suite's other files need every node active.
  if (drained !== undefined) await dockerOn(1, 'node', 'update', '--availability', 'active', drained);
  if (lab !== undefined) {
    await stopAndKeepLogs(`${lab.names}-volume-check`, controllers);
    // The jobs (on the manager) first: their tasks' containers go with them.
    await lab.close();
    for (const node of WORKERS) await removeTestObjects(lab.names, dockerOf(node));
  }
  await eventually(() => removeImage(IMAGE, imageAdded), { timeoutMs: 30_000 });
  if (work !== undefined) await rm(work, { recursive: true, force: true });
}, 120_000);

const homes = (exportRoot: string): Resource =>
  lab.resource('HomeFolders', homesName, {
    root,
    naming: 'plain',
    quota: { driver: 'none' },
    volume: {
      name: `${lab.names}-u-{username}`,
      driver: 'local',
      driverOpts: { type: 'none', o: 'bind', device: `${exportRoot}/{username}` },
    },
  });

/** A volume as an old export left it on a node: a bind mount of the old folder. */
async function staleVolume(node: ClusterNode, user: string): Promise<string> {
  const name = `${lab.names}-u-${user}`;
  await dockerOf(node).createVolume({
    Name: name,
    Driver: 'local',
    DriverOpts: { type: 'none', o: 'bind', device: `${old}/${user}` },
    Labels: { [TEST_RUN_LABEL]: testRunId() },
  });
  return name;
}

const deviceOn = (node: ClusterNode, volume: string): Promise<string> =>
  dockerOn(node, 'volume', 'inspect', '-f', '{{.Options.device}}', volume);

/** The HomeFolders' per-node entries, by node ID. */
async function nodesInStatus(): Promise<Map<string, NodeVolumeCheck>> {
  const status = await lab.store.readStatus('HomeFolders', homesName);
  return new Map((status?.nodes ?? []).map((n) => [n.node, n]));
}

interface JobView {
  readonly id: string;
  readonly name: string;
  readonly spec: unknown;
  /** node ID, state and exit code of each task. */
  readonly tasks: [string, string, number | undefined][];
}

async function jobs(): Promise<JobView[]> {
  const services = await managerDocker.listServices({
    filters: JSON.stringify({ label: [`${LABELS.volumeCheck}=${homesName}`] }),
  });
  return Promise.all(
    services.map(async (s) => {
      const tasks = (await managerDocker.listTasks({ filters: JSON.stringify({ service: [s.ID] }) })) as {
        NodeID?: string;
        Status?: { State?: string; ContainerStatus?: { ExitCode?: number } };
      }[];
      return {
        id: s.ID,
        name: s.Spec?.Name ?? '',
        spec: s.Spec,
        tasks: tasks
          .map((t): [string, string, number | undefined] => [
            t.NodeID ?? '',
            t.Status?.State ?? '',
            t.Status?.ContainerStatus?.ExitCode,
          ])
          .sort((a, b) => a[0].localeCompare(b[0])),
      };
    }),
  );
}

const completedOn = (...nodes: ClusterNode[]): [string, string, number][] =>
  nodes
    .map((n): [string, string, number] => [ids[n], 'complete', 0])
    .sort((a, b) => a[0].localeCompare(b[0]));

function startController(rerunSeconds: number): ControllerProcess {
  const controller = startClusterController(lab.prefix, {
    SWARMKEEPER_IMAGE: IMAGE,
    SWARMKEEPER_VOLUME_CHECK_RERUN_SECONDS: String(rerunSeconds),
  });
  controllers.push(controller);
  return controller;
}

describe('per-node volume check job on three nodes', () => {
  it('checks every node’s own volumes, and reruns for a node that had no task', async () => {
    const alice = await staleVolume(2, 'alice');
    const bob = await staleVolume(3, 'bob');
    // bob's session runs on node 3: his volume is in use there.
    const session = await startUserSession(lab.name('session-bob'), bob, dockerOf(3));

    await lab.apply(homes(old));
    // No rerun while this part looks: bob's volume in use would start one every few seconds,
    // and a rerun's status no longer shows what the template change replaced.
    const first = startController(600);
    await first.waitForLog('controller running');
    await eventually(
      async () => {
        const nodes = await nodesInStatus();
        expect([...nodes.keys()].sort()).toEqual(Object.values(ids).sort());
        for (const node of nodes.values()) expect(node).toMatchObject({ state: 'Synced', replaced: [] });
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const [firstJob] = await jobs();

    // The export moves: a new template.
    await lab.apply(homes(root));
    await eventually(
      async () => {
        const nodes = await nodesInStatus();
        expect(nodes.size).toBe(3);
        expect(nodes.get(ids[1])).toMatchObject({ state: 'Synced', replaced: [], inUse: [] });
        expect(nodes.get(ids[2])).toMatchObject({ state: 'Synced', replaced: [alice], inUse: [] });
        expect(nodes.get(ids[3])).toMatchObject({
          state: 'OutOfSync',
          replaced: [],
          inUse: [{ volume: bob, user: 'bob' }],
        });
        const status = await lab.store.readStatus('HomeFolders', homesName);
        expect(status?.sync).toBe('OutOfSync');
        expect(status?.message).toContain('bob');
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    // Each node's task worked on its own engine.
    expect(await deviceOn(2, alice)).toBe(`${root}/alice`);
    expect(await deviceOn(3, bob)).toBe(`${old}/bob`);
    for (const node of [1, 3] as const) {
      expect(
        await dockerOf(node)
          .getVolume(alice)
          .inspect()
          .catch(() => undefined),
      ).toBeUndefined();
    }

    // One global job left, with one completed task on each node; the first was removed.
    const [job, ...more] = await eventually(async () => {
      const list = await jobs();
      expect(list.map((j) => j.name)).not.toContain(firstJob?.name);
      expect(list).toHaveLength(1);
      return list;
    });
    expect(more).toEqual([]);
    expect(job?.spec).toMatchObject({
      Mode: { GlobalJob: {} },
      Labels: { [LABELS.volumeCheck]: homesName, [TEST_RUN_LABEL]: testRunId() },
      TaskTemplate: { ContainerSpec: { Image: IMAGE, Args: ['homes', 'check-volumes'] } },
    });
    expect(job?.tasks).toEqual(completedOn(1, 2, 3));
    expect(first.lines.filter((l) => l.msg === 'volume check job started').map((l) => l.reason)).toEqual([
      'first-run',
      'template-changed',
    ]);

    // bob's session ends; node 2 is drained, so the rerun gives it no task.
    await first.stop();
    await dockerOf(3).getContainer(session.id).remove({ force: true });
    drained = ids[2];
    await dockerOn(1, 'node', 'update', '--availability', 'drain', ids[2]);
    const second = startController(5);
    const rerun = await eventually(
      async () => {
        const nodes = await nodesInStatus();
        expect([...nodes.keys()].sort()).toEqual([ids[1], ids[3]].sort());
        expect(nodes.get(ids[3])).toMatchObject({ state: 'Synced', replaced: [bob], inUse: [] });
        const [latest, ...others] = await jobs();
        expect(others).toEqual([]);
        expect(latest?.tasks).toEqual(completedOn(1, 3));
        return latest;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(await deviceOn(3, bob)).toBe(`${root}/bob`);

    // Active again: the finished job never gave it a task, so a rerun must.
    const reactivated = Date.now();
    await dockerOn(1, 'node', 'update', '--availability', 'active', ids[2]);
    drained = undefined;
    await eventually(
      async () => {
        const nodes = await nodesInStatus();
        expect(nodes.size).toBe(3);
        for (const node of nodes.values()) expect(node).toMatchObject({ state: 'Synced', inUse: [] });
        const [latest, ...others] = await jobs();
        expect(others).toEqual([]);
        expect(latest?.name).not.toBe(rerun?.name);
        expect(latest?.tasks).toEqual(completedOn(1, 2, 3));
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const tookMs = Date.now() - reactivated;
    // Swarm keeps a finished job's task containers: each task removed the earlier jobs' ones on its
    // node, so the newest job's are all that is left.
    const [newest] = await jobs();
    for (const node of [1, 2, 3] as const) {
      const left = await dockerOf(node).listContainers({
        all: true,
        filters: JSON.stringify({ label: [`${LABELS.volumeCheck}=${homesName}`] }),
      });
      expect(left.map((c) => c.Labels['com.docker.swarm.service.name'])).toEqual([newest?.name]);
    }
    expect(second.lines.filter((l) => l.msg === 'volume check job started').map((l) => l.reason)).toEqual([
      'rerun',
      'rerun',
    ]);
    expect((await lab.store.readStatus('HomeFolders', homesName))?.sync).toBe('Synced');
    console.info(`volume check: node 2 checked ${tookMs} ms after it was active again`);
  });
});

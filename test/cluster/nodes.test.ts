/**
 * Several nodes (issue 7): the real `swarmkeeper run` against the manager of the three-engine Swarm
 * of scripts/cluster-lab.sh, managing an overlay network, a service spread over the nodes and a hub
 * pinned to the manager as in manifests/30-jupyterhub.yaml. A worker is drained, then a worker's
 * engine is killed with SIGKILL. Swarm moves the tasks; the controller must see nothing to do:
 * no write event on the manager, no drift or action line, no removal, status Synced throughout and
 * Healthy again once Swarm is done, the hub's task untouched on the manager.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControllerLab } from '../support/controller.js';
import { ensureBuilt, type ControllerProcess } from '../support/controller-process.js';
import {
  clusterLab,
  dockerdPid,
  dockerOn,
  liveTasks,
  managerDocker,
  nodeIdOf,
  nodeView,
  startClusterController,
  stopAndKeepLogs,
  writesBetween,
  type ClusterNode,
  type TaskView,
} from '../support/cluster.js';
import { eventually } from '../support/eventually.js';

const SLEEPER = { image: 'local/busybox:1', command: ['sleep', '3600'], stopGracePeriod: '1s' };
/** Several resyncs of the controller (2 s each) after Swarm settles, so a late fight would show. */
const QUIET_MS = 6_000;

let lab: ControllerLab;
let controller: ControllerProcess;
let web: string;
let hub: string;
let net: string;
let managerId: string;
/** The hub's task when the suite started: it must be the same task, on the manager, at every check. */
let hubTask: TaskView;

async function statusOf(name: string): Promise<{ sync?: string; health?: string }> {
  return (await lab.store.readStatus('Service', name)) ?? {};
}

async function expectSettled(): Promise<void> {
  await eventually(
    async () => {
      for (const name of [web, hub])
        expect(await statusOf(name)).toMatchObject({ sync: 'Synced', health: 'Healthy' });
      expect((await lab.store.readStatus('Network', net))?.sync).toBe('Synced');
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

/** Samples the services' sync state while `during` runs: Synced every time, or the controller flapped. */
async function watchSync<T>(during: () => Promise<T>): Promise<{ result: T; samples: string[] }> {
  const samples: string[] = [];
  let watching = true;
  const sampler = (async () => {
    while (watching) {
      for (const name of [web, hub]) samples.push(`${name}:${(await statusOf(name)).sync ?? 'none'}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  })();
  try {
    return { result: await during(), samples };
  } finally {
    watching = false;
    await sampler;
  }
}

/** The controller's lines since index `from` that would mean it acted: drift, an action, a removal. */
function actingLines(from: number): unknown[] {
  return controller.lines
    .slice(from)
    .filter(
      (l) =>
        l.msg === 'drift detected' ||
        typeof l.verb === 'string' ||
        l.msg.startsWith('removal') ||
        (typeof l.level === 'number' && l.level >= 50),
    );
}

async function expectHubOnManager(): Promise<void> {
  const tasks = await liveTasks(hub);
  expect(tasks).toEqual([{ ...hubTask, state: 'running' }]);
  expect(tasks[0]?.nodeId).toBe(managerId);
}

/** Waits until `web` has its three tasks running, none on `avoid`. */
async function webMovedOff(avoid: string): Promise<TaskView[]> {
  return eventually(
    async () => {
      const tasks = await liveTasks(web);
      expect(tasks.filter((t) => t.state === 'running')).toHaveLength(3);
      expect(tasks.filter((t) => t.nodeId === avoid)).toEqual([]);
      return tasks;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

/** Runs a node fault and checks the controller kept its hands off throughout. */
async function expectHandsOff(fault: () => Promise<void>): Promise<void> {
  const from = controller.lines.length;
  const since = Date.now();
  const { samples } = await watchSync(async () => {
    await fault();
    await expectSettled();
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  });
  const until = Date.now();
  expect(await writesBetween(lab.names, since, until)).toEqual([]);
  expect(actingLines(from)).toEqual([]);
  expect(samples.filter((s) => !s.endsWith(':Synced'))).toEqual([]);
  expect(controller.running).toBe(true);
  await expectHubOnManager();
}

beforeAll(async () => {
  await ensureBuilt();
  lab = new ControllerLab('cluster-nodes', managerDocker);
  await lab.open();
  web = lab.name('web');
  hub = lab.name('hub');
  net = lab.name('net');
  managerId = await nodeIdOf(1);
  const applied = Date.now();
  await lab.apply(
    lab.resource('Network', net, { driver: 'overlay', attachable: true }),
    lab.resource('Service', web, {
      ...SLEEPER,
      networks: [net],
      replicas: 3,
      placement: { preferences: [{ spread: 'node.labels.lab.node' }] },
    }),
    lab.resource('Service', hub, {
      ...SLEEPER,
      networks: [net],
      replicas: 1,
      placement: { constraints: ['node.role == manager'] },
    }),
  );
  controller = startClusterController(lab.prefix);
  await controller.waitForLog('controller running');
  await expectSettled();
  // The event count below can see writes: here are the controller's creates (Swarm's allocator then
  // adds an `update` of its own to a new service, which a fault below does not cause).
  expect(
    (await writesBetween(lab.names, applied, Date.now()))
      .filter((e) => e.type === 'service' && e.action === 'create')
      .sort((a, b) => a.name.localeCompare(b.name)),
  ).toEqual([
    { type: 'service', action: 'create', name: hub },
    { type: 'service', action: 'create', name: web },
  ]);
  const tasks = await liveTasks(hub);
  expect(tasks).toHaveLength(1);
  hubTask = tasks[0] as TaskView;
  expect(hubTask.nodeId).toBe(managerId);
  // Spread over the lab.node label: one task per node, so each fault below moves one.
  expect(new Set((await liveTasks(web)).map((t) => t.nodeId)).size).toBe(3);
});

afterAll(async () => {
  await stopAndKeepLogs(`${lab.names}-nodes`, controller ? [controller] : []);
  await lab?.close();
});

describe('several nodes', () => {
  it('drain a worker: Swarm moves its task, the controller does nothing, the hub stays', async () => {
    const worker: ClusterNode = 2;
    const id = await nodeIdOf(worker);
    try {
      await expectHandsOff(async () => {
        await dockerOn(1, 'node', 'update', '--availability', 'drain', id);
        await webMovedOff(id);
      });
    } finally {
      await dockerOn(1, 'node', 'update', '--availability', 'active', id);
    }
    await eventually(async () =>
      expect(await nodeView(id)).toEqual({ state: 'ready', availability: 'active' }),
    );
  });

  it('kill -9 a worker engine, then start it again: Swarm moves the task, the node rejoins, the controller does nothing', async () => {
    const worker: ClusterNode = 3;
    const id = await nodeIdOf(worker);
    // The spread put a task there at the start, and a drain of another node never moves one away.
    expect((await liveTasks(web)).some((t) => t.nodeId === id)).toBe(true);
    try {
      await expectHandsOff(async () => {
        process.kill(await dockerdPid(worker), 'SIGKILL');
        await eventually(async () => expect((await nodeView(id)).state).toBe('down'), {
          timeoutMs: 60_000,
          intervalMs: 500,
        });
        await webMovedOff(id);
        await clusterLab('start', String(worker));
        // Back with its Swarm state: the same node ID, ready again.
        await eventually(async () => expect((await nodeView(id)).state).toBe('ready'), {
          timeoutMs: 60_000,
          intervalMs: 500,
        });
      });
    } finally {
      await clusterLab('start', String(worker));
    }
    expect(await nodeIdOf(worker)).toBe(id);
  });
});

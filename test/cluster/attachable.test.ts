/**
 * moby/moby#27124 (issue 7): an attachable overlay network that loses `attachable` when a node
 * leaves the Swarm and joins again, repaired without losing the users' services.
 *
 * How it manifested (Docker 1.12): a node that left and joined again kept a copy of the network
 * that was no longer attachable; fixed in 1.13 (moby/moby#28721 passes `attachable` along, and
 * #30157 removes attachable networks from a node that leaves). On this lab's 20.10 engine it does
 * NOT reproduce: the test makes a worker leave and join again for real, checks what the manager
 * then reports, and, finding the network still attachable, builds the same end state by hand, as
 * someone cleaning up after the bug would: the network removed and created again under its name and
 * labels without `--attachable`, with the hub and the users' notebook services (services
 * swarmkeeper does not own, as the hub's spawner makes them) detached and attached again.
 * If a future engine does reproduce it, the test takes the real end state instead.
 * The controller must then recreate the network attachable, reattaching every service: the
 * users' services keep their IDs and run again on the new network; none is removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControllerLab } from '../support/controller.js';
import { ensureBuilt, type ControllerProcess } from '../support/controller-process.js';
import {
  dockerOn,
  liveTasks,
  managerDocker,
  nodeIdOf,
  nodeView,
  startClusterController,
  stopAndKeepLogs,
  writesBetween,
} from '../support/cluster.js';
import { eventually } from '../support/eventually.js';
import { TEST_RUN_LABEL, testRunId } from '../support/lab.js';

const IMAGE = 'local/busybox:1';
const SLEEPER = { image: IMAGE, command: ['sleep', '3600'], stopGracePeriod: '1s' };

let lab: ControllerLab;
const controllers: ControllerProcess[] = [];
let net: string;
let hub: string;
let users: string[];

function startController(): ControllerProcess {
  const controller = startClusterController(lab.prefix);
  controllers.push(controller);
  return controller;
}

interface NetworkView {
  readonly id: string;
  readonly attachable: boolean;
  readonly labels: Record<string, string>;
}

async function network(): Promise<NetworkView> {
  const inspected = (await managerDocker.getNetwork(net).inspect()) as {
    Id: string;
    Attachable?: boolean;
    Labels?: Record<string, string>;
  };
  return { id: inspected.Id, attachable: inspected.Attachable === true, labels: inspected.Labels ?? {} };
}

/** The network IDs a service's tasks are attached to, by its current spec. */
async function networksOf(service: string): Promise<string[]> {
  const inspected = (await managerDocker.getService(service).inspect()) as {
    Spec?: { TaskTemplate?: { Networks?: { Target?: string }[] } };
  };
  return (inspected.Spec?.TaskTemplate?.Networks ?? []).map((n) => n.Target ?? '');
}

async function serviceId(service: string): Promise<string> {
  return ((await managerDocker.getService(service).inspect()) as { ID: string }).ID;
}

async function running(service: string): Promise<void> {
  const tasks = await liveTasks(service);
  expect(tasks.map((t) => t.state)).toEqual(['running']);
}

/** A worker leaves the Swarm and joins again, as a new node that gets the old one's label. */
async function leaveAndRejoin(): Promise<void> {
  const oldId = await nodeIdOf(2);
  const token = await dockerOn(1, 'swarm', 'join-token', '-q', 'worker');
  await dockerOn(2, 'swarm', 'leave', '--force');
  await dockerOn(2, 'swarm', 'join', '--token', token, '--advertise-addr', '10.210.0.2', '10.210.0.1:2377');
  const newId = await nodeIdOf(2);
  await eventually(async () => expect((await nodeView(newId)).state).toBe('ready'), { timeoutMs: 30_000 });
  await dockerOn(1, 'node', 'update', '--label-add', 'lab.node=n2', newId);
  await dockerOn(1, 'node', 'rm', '--force', oldId);
}

/** The end state of #27124 by hand: the network under its own name and labels, not attachable, every service on it again. */
async function recreateWithoutAttachable(before: NetworkView): Promise<void> {
  const services = [hub, ...users];
  for (const service of services) await dockerOn(1, 'service', 'update', '-d', '--network-rm', net, service);
  // The manager refuses to remove it until every task that used it has shut down.
  await eventually(() => dockerOn(1, 'network', 'rm', net), { timeoutMs: 60_000, intervalMs: 500 });
  const labels = Object.entries(before.labels).flatMap(([key, value]) => ['--label', `${key}=${value}`]);
  // The manager frees the name a moment after the remove returns.
  await eventually(() => dockerOn(1, 'network', 'create', '--driver', 'overlay', ...labels, net), {
    timeoutMs: 30_000,
    intervalMs: 500,
  });
  for (const service of services) await dockerOn(1, 'service', 'update', '-d', '--network-add', net, service);
}

beforeAll(async () => {
  await ensureBuilt();
  lab = new ControllerLab('cluster-attachable', managerDocker);
  await lab.open();
  net = lab.name('hubnet');
  hub = lab.name('hub');
  users = [lab.name('jupyter-alice'), lab.name('jupyter-bob')];
});

afterAll(async () => {
  await stopAndKeepLogs(`${lab.names}-attachable`, controllers);
  await lab?.close();
});

describe('moby #27124: a network that loses attachable', () => {
  it('is recreated attachable, the users’ services kept and running on it', async () => {
    await lab.apply(
      lab.resource('Network', net, { driver: 'overlay', attachable: true }),
      lab.resource('Service', hub, {
        ...SLEEPER,
        networks: [net],
        replicas: 1,
        placement: { constraints: ['node.role == manager'] },
      }),
    );
    const first = startController();
    await first.waitForLog('controller running');
    await eventually(async () => expect((await network()).attachable).toBe(true), { timeoutMs: 30_000 });
    // The users' notebooks, as the hub's spawner makes them: plain services, not swarmkeeper's.
    for (const user of users) {
      await dockerOn(
        1,
        'service',
        'create',
        '-d',
        '--name',
        user,
        '--label',
        `${TEST_RUN_LABEL}=${testRunId()}`,
        '--network',
        net,
        '--stop-grace-period',
        '1s',
        IMAGE,
        'sleep',
        '3600',
      );
    }
    const userIds = await Promise.all(users.map(serviceId));
    await eventually(
      async () => {
        for (const service of [hub, ...users]) await running(service);
        expect(await lab.store.readStatus('Service', hub)).toMatchObject({
          sync: 'Synced',
          health: 'Healthy',
        });
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

    // Stopped, so the state after the rejoin is the engine's alone and it does not repair each
    // step of the hand-made end state as it happens.
    await first.stop();
    await leaveAndRejoin();
    const afterRejoin = await network();
    // Not reproduced on this engine (see the file comment): make the end state by hand.
    if (afterRejoin.attachable) await recreateWithoutAttachable(afterRejoin);
    const broken = await network();
    expect(broken.attachable).toBe(false);
    for (const service of [hub, ...users]) expect(await networksOf(service)).toEqual([broken.id]);

    const since = Date.now();
    const second = startController();
    const repaired = await eventually(
      async () => {
        const now = await network();
        expect(now.attachable).toBe(true);
        expect(now.id).not.toBe(broken.id);
        for (const service of [hub, ...users]) expect(await networksOf(service)).toEqual([now.id]);
        for (const service of [hub, ...users]) await running(service);
        expect(await lab.store.readStatus('Network', net)).toMatchObject({ sync: 'Synced' });
        expect(await lab.store.readStatus('Service', hub)).toMatchObject({
          sync: 'Synced',
          health: 'Healthy',
        });
        return now;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(repaired.labels).toMatchObject({ [TEST_RUN_LABEL]: testRunId() });
    // The users' services are the same ones, never removed or created again.
    expect(await Promise.all(users.map(serviceId))).toEqual(userIds);
    const writes = await writesBetween(lab.names, since, Date.now());
    expect(writes.filter((w) => w.type === 'service' && w.action !== 'update')).toEqual([]);
    expect(writes.filter((w) => w.type === 'network').map((w) => w.action)).toEqual(['remove', 'create']);
    expect(second.logsWith('drift detected').some((l) => JSON.stringify(l.action) === '["recreate"]')).toBe(
      true,
    );
  });
});

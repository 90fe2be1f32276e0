/**
 * The per-node volume check job on the lab's real single-node Swarm: the controller starts a
 * global job running the swarmkeeper image (built here without a registry) when the HomeFolders
 * volume template changes; its task checks the node's per-user volumes and the controller writes
 * the node's outcome into the HomeFolders status.
 *
 * The stale volumes belong to no registered User, so the controller's own per-user check leaves
 * them alone: whatever happens to them is the job's doing.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Resource } from '../../src/resources/resource.js';
import { LABELS } from '../../src/resources/metadata.js';
import { runCli } from '../support/cli.js';
import { ControllerLab } from '../support/controller.js';
import { startUserSession, testDocker } from '../support/docker-cleanup.js';
import { eventually } from '../support/eventually.js';
import { buildSwarmkeeperImage } from '../support/image.js';
import { REDIS_URL, TEST_RUN_LABEL, testRunId } from '../support/lab.js';

const run = promisify(execFile);
const docker = async (...args: string[]): Promise<string> => (await run('docker', args)).stdout.trim();
/** Its own tag, so building it never replaces an image another test or the demo runs. */
const IMAGE = process.env.SWARMKEEPER_VOLUME_CHECK_TEST_IMAGE ?? 'local/swarmkeeper:volume-check-test';

let lab: ControllerLab;
let work: string;
let root: string;
let old: string;

beforeAll(() => buildSwarmkeeperImage(IMAGE), 300_000);

beforeEach(async () => {
  lab = new ControllerLab('volume-job');
  await lab.open();
  work = await mkdtemp(path.join(tmpdir(), 'sk-volume-job-'));
  root = path.join(work, 'nfs');
  old = path.join(work, 'old-nfs');
  for (const folder of ['alice', 'bob']) {
    await mkdir(path.join(root, folder), { recursive: true });
    await mkdir(path.join(old, folder), { recursive: true });
  }
});
afterEach(async () => {
  await lab.close();
  await rm(work, { recursive: true, force: true });
});

const template = (exportRoot: string): Record<string, unknown> => ({
  name: `${lab.names}-u-{username}`,
  driver: 'local',
  driverOpts: { type: 'none', o: 'bind', device: `${exportRoot}/{username}` },
});

const homes = (exportRoot: string): Resource =>
  lab.resource('HomeFolders', lab.name('nfs'), {
    root,
    naming: 'plain',
    quota: { driver: 'none' },
    volume: template(exportRoot),
  });

const device = (volume: string): Promise<string> =>
  docker('volume', 'inspect', '-f', '{{.Options.device}}', volume);

async function jobsOf(homesName: string): Promise<{ name: string; id: string; spec: unknown }[]> {
  const services = await testDocker.listServices({
    filters: JSON.stringify({ label: [`${LABELS.volumeCheck}=${homesName}`] }),
  });
  return services.map((s) => ({ name: s.Spec?.Name ?? '', id: s.ID, spec: s.Spec }));
}

describe('per-node volume check job', () => {
  it('replaces an unused stale volume on the node, reports one in use, and records the node', async () => {
    const nodeId = await docker('info', '-f', '{{.Swarm.NodeID}}');
    const alice = `${lab.names}-u-alice`;
    const bob = `${lab.names}-u-bob`;
    // Volumes as an old export left them on a node: bind mounts of the old folders.
    for (const [volume, folder] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      await testDocker.createVolume({
        Name: volume,
        Driver: 'local',
        DriverOpts: { type: 'none', o: 'bind', device: `${old}/${folder}` },
        Labels: { [TEST_RUN_LABEL]: testRunId() },
      });
    }
    // bob's session is running: his volume is in use.
    await startUserSession(lab.name('session-bob'), bob);

    const homesName = lab.name('nfs');
    await lab.apply(homes(old));
    await lab.start({ env: { SWARMKEEPER_IMAGE: IMAGE } });

    // The first job finds the volumes as the template wants them.
    await eventually(
      async () => {
        const status = await lab.store.readStatus('HomeFolders', homesName);
        expect(status?.nodes).toEqual([
          expect.objectContaining({ node: nodeId, state: 'Synced', replaced: [], inUse: [] }),
        ]);
      },
      { timeoutMs: 60_000 },
    );
    const [first] = await jobsOf(homesName);
    expect(first).toBeDefined();

    // The export moves: a new template.
    await lab.apply(homes(root));
    await eventually(
      async () => {
        const status = await lab.store.readStatus('HomeFolders', homesName);
        expect(status?.nodes).toEqual([
          expect.objectContaining({
            node: nodeId,
            state: 'OutOfSync',
            replaced: [alice],
            inUse: [{ volume: bob, user: 'bob' }],
          }),
        ]);
        expect(status?.sync).toBe('OutOfSync');
        expect(status?.message).toContain('bob');
      },
      { timeoutMs: 60_000 },
    );
    expect(await device(alice)).toBe(`${root}/alice`);
    expect(await device(bob)).toBe(`${old}/bob`);
    // People see it in `swarmkeeper status`.
    const status = await runCli(['status'], { REDIS_URL, SWARMKEEPER_PREFIX: lab.prefix });
    expect(status.stdout).toMatch(new RegExp(`HomeFolders/${homesName} +\\S+ +OutOfSync .*bob \\(${bob}\\)`));

    // The job: a global job of the swarmkeeper image with the socket mounted; its task ran here.
    const jobs = await eventually(async () => {
      const list = await jobsOf(homesName);
      // The first job is removed once the newer one finished.
      expect(list.map((j) => j.name)).not.toContain(first?.name);
      expect(list).toHaveLength(1);
      return list;
    });
    const job = jobs[0];
    expect(job?.spec).toMatchObject({
      Mode: { GlobalJob: {} },
      Labels: { [LABELS.managed]: 'true', [LABELS.volumeCheck]: homesName, [TEST_RUN_LABEL]: testRunId() },
      TaskTemplate: {
        ContainerSpec: {
          Image: IMAGE,
          Args: ['homes', 'check-volumes'],
          Mounts: [expect.objectContaining({ Type: 'bind', Source: '/var/run/docker.sock' })],
        },
        RestartPolicy: { Condition: 'none' },
      },
    });
    const tasks = (await testDocker.listTasks({
      filters: JSON.stringify({ service: [job?.id ?? ''] }),
    })) as { NodeID?: string; Status?: { State?: string; ContainerStatus?: { ExitCode?: number } } }[];
    expect(tasks.map((t) => [t.NodeID, t.Status?.State, t.Status?.ContainerStatus?.ExitCode])).toEqual([
      [nodeId, 'complete', 0],
    ]);

    const started = lab.logsWith('volume check job started', { kind: 'HomeFolders', name: homesName });
    expect(started.map((l) => l.reason)).toEqual(['first-run', 'template-changed']);
    expect(lab.logsWith('volume check job finished', { job: job?.name })).toEqual([
      expect.objectContaining({ replaced: 1, inUse: [`bob@${await docker('info', '-f', '{{.Name}}')}`] }),
    ]);
  }, 180_000);

  it('picks a running job up again after a controller restart instead of starting another', async () => {
    const homesName = lab.name('nfs');
    await lab.apply(homes(root));
    await lab.start({ env: { SWARMKEEPER_IMAGE: IMAGE } });
    await eventually(() =>
      expect(lab.logsWith('volume check job started', { name: homesName })).toHaveLength(1),
    );
    // Stopped while its job runs (a task takes a couple of seconds); the next controller finds it by its labels.
    await lab.stopAll();
    // Its task takes seconds to start and run: the first controller stopped before it ended.
    expect(lab.logsWith('volume check job finished', { name: homesName })).toEqual([]);
    await lab.start({ env: { SWARMKEEPER_IMAGE: IMAGE } });
    const nodeId = await docker('info', '-f', '{{.Swarm.NodeID}}');
    await eventually(
      async () => {
        const status = await lab.store.readStatus('HomeFolders', homesName);
        expect(status?.nodes).toEqual([expect.objectContaining({ node: nodeId, state: 'Synced' })]);
      },
      { timeoutMs: 60_000 },
    );
    expect(lab.logsWith('volume check job started', { name: homesName })).toHaveLength(1);
    expect(await jobsOf(homesName)).toHaveLength(1);
  }, 120_000);

  it('removes the job of a HomeFolders deleted while no controller ran, and its status, and keeps the folders', async () => {
    const homesName = lab.name('nfs');
    await lab.apply(homes(root));
    await lab.start({ env: { SWARMKEEPER_IMAGE: IMAGE } });
    await eventually(async () => expect(await jobsOf(homesName)).toHaveLength(1), { timeoutMs: 60_000 });
    await eventually(async () => expect(await lab.store.readStatus('HomeFolders', homesName)).toBeDefined());
    await lab.stopAll();

    // No notification reaches a controller: the next one finds the job by its labels.
    await lab.store.delete('HomeFolders', homesName);
    await lab.start({ env: { SWARMKEEPER_IMAGE: IMAGE } });
    await eventually(async () => expect(await jobsOf(homesName)).toEqual([]), { timeoutMs: 30_000 });
    expect(lab.logsWith('volume check job removed', { name: homesName })).toHaveLength(1);
    await eventually(async () =>
      expect(await lab.store.readStatus('HomeFolders', homesName)).toBeUndefined(),
    );
    for (const folder of ['alice', 'bob'])
      expect((await stat(path.join(root, folder))).isDirectory()).toBe(true);
  }, 120_000);

  it('records a node whose task failed, and runs the job again later', async () => {
    const homesName = lab.name('nfs');
    await lab.apply(homes(root));
    // An image without swarmkeeper in it: the task cannot start its command.
    await lab.start({
      env: { SWARMKEEPER_IMAGE: 'local/busybox:1', SWARMKEEPER_VOLUME_CHECK_RERUN_SECONDS: '4' },
    });
    const nodeId = await docker('info', '-f', '{{.Swarm.NodeID}}');
    const hostname = await docker('info', '-f', '{{.Name}}');
    await eventually(
      async () => {
        const status = await lab.store.readStatus('HomeFolders', homesName);
        expect(status?.nodes).toEqual([expect.objectContaining({ node: nodeId, state: 'Failed' })]);
        expect(status?.nodes?.[0]?.message).toMatch(/^task (failed|rejected)/);
        expect(status?.sync).toBe('OutOfSync');
      },
      { timeoutMs: 60_000 },
    );
    const first = lab.logsWith('volume check job finished', { name: homesName })[0];
    expect(first).toMatchObject({ failed: [hostname] });

    // The rerun, once due, replaces the failed job; the failed one is removed once it finished.
    await eventually(
      () => {
        const reasons = lab.logsWith('volume check job started', { name: homesName }).map((l) => l.reason);
        expect(reasons.slice(0, 2)).toEqual(['first-run', 'rerun']);
        expect(lab.logsWith('volume check job removed', { job: first?.job })).toHaveLength(1);
      },
      { timeoutMs: 60_000 },
    );
    expect((await jobsOf(homesName)).map((j) => j.name)).not.toContain(first?.job);
  }, 150_000);
});

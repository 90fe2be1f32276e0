/**
 * Home folders through the running controller, on a real filesystem under a temporary root, with
 * the stand-in xfs_quota (this kernel cannot enforce XFS quotas) and the real Swarm for volumes.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Resource } from '../../src/resources/resource.js';
import { ControllerLab } from '../support/controller.js';
import { eventually } from '../support/eventually.js';
import { TEST_RUN_LABEL, testRunId } from '../support/lab.js';

const run = promisify(execFile);
const docker = async (...args: string[]): Promise<string> => (await run('docker', args)).stdout.trim();
const STAND_IN = path.resolve('test/fixtures/bin/xfs_quota');

let lab: ControllerLab;
let root: string;
let work: string;
let quotaEnv: Record<string, string>;

beforeEach(async () => {
  lab = new ControllerLab('homes');
  await lab.open();
  work = await mkdtemp(path.join(tmpdir(), 'sk-homes-'));
  root = path.join(work, 'nfs');
  await mkdir(root);
  quotaEnv = { XFS_QUOTA_LOG: path.join(work, 'xfs.log'), XFS_QUOTA_STATE: path.join(work, 'xfs.json') };
  Object.assign(process.env, quotaEnv);
});
afterEach(async () => {
  await lab.close();
  await rm(work, { recursive: true, force: true });
});

function homes(spec: Record<string, unknown> = {}): Resource {
  return lab.resource('HomeFolders', lab.name('nfs'), {
    root,
    naming: 'plain',
    owner: { uid: 1000, gid: 100 },
    mode: '0770',
    emailFile: true,
    quota: { driver: 'xfs', default: '1Gi' },
    ...spec,
  });
}

const user = (name: string, spec: Record<string, unknown> = {}): Resource =>
  lab.resource('User', name, { email: `${name}@example.org`, ...spec });

async function quotaState(): Promise<Record<string, { bhard?: number; path?: string }>> {
  try {
    return JSON.parse(await readFile(quotaEnv.XFS_QUOTA_STATE ?? '', 'utf8')) as Record<
      string,
      { bhard?: number }
    >;
  } catch {
    return {};
  }
}

async function limitOf(folder: string): Promise<number | undefined> {
  const state = await quotaState();
  return Object.values(state).find((p) => p.path === path.join(root, folder))?.bhard;
}

async function xfsRuns(): Promise<number> {
  try {
    return (await readFile(quotaEnv.XFS_QUOTA_LOG ?? '', 'utf8')).split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/**
 * What SwarmSpawner does for a user: a service mounting a per-user volume whose bind device is
 * the user's folder (standing in for NFS: it fails the same way while the folder is missing).
 */
async function spawnLikeSwarmSpawner(service: string, folder: string): Promise<void> {
  await docker(
    'service',
    'create',
    '--detach',
    '--name',
    service,
    '--label',
    `${TEST_RUN_LABEL}=${testRunId()}`,
    '--restart-delay',
    '1s',
    '--stop-grace-period',
    '1s',
    '--mount',
    `type=volume,source=${lab.names}-u-${folder},target=/home/jovyan/work,volume-driver=local,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=${root}/${folder}`,
    'local/busybox:1',
    'sleep',
    '3600',
  );
}

const startController = () => lab.start({ env: { SWARMKEEPER_XFS_QUOTA: STAND_IN } });

describe('home folders', () => {
  it('creates each folder with owner, mode, e-mail file and quota, and repairs every drift', async () => {
    await lab.apply(homes(), user('alice', { quota: '2Gi' }), user('bob'));
    await startController();
    const alice = path.join(root, 'alice');
    await eventually(async () => {
      const info = await stat(alice);
      expect([info.uid, info.gid, info.mode & 0o7777]).toEqual([1000, 100, 0o770]);
      expect(await readFile(`${alice}_email.txt`, 'utf8')).toBe('alice@example.org');
      expect(await limitOf('alice')).toBe(2 * 1024 ** 3);
      expect(await limitOf('bob')).toBe(1024 ** 3);
    });
    await eventually(async () =>
      expect((await lab.store.readStatus('User', 'alice'))?.quotaBytes).toBe(2 * 1024 ** 3),
    );

    await rm(alice, { recursive: true });
    await eventually(async () => expect((await stat(alice)).isDirectory()).toBe(true));
    expect(lab.logs.some((l) => l.msg.includes('deleted outside swarmkeeper') && l.name === 'alice')).toBe(
      true,
    );

    await chown(alice, 0, 0);
    await chmod(alice, 0o755);
    await writeFile(`${alice}_email.txt`, 'mallory@example.org\n');
    await eventually(async () => {
      const info = await stat(alice);
      expect([info.uid, info.gid, info.mode & 0o7777]).toEqual([1000, 100, 0o770]);
      expect(await readFile(`${alice}_email.txt`, 'utf8')).toBe('alice@example.org');
    });

    // Out of band: someone lowers alice's quota with xfs_quota by hand.
    const state = await quotaState();
    const id = Object.keys(state).find((k) => state[k]?.path === alice);
    expect(id).toBeDefined();
    await writeFile(
      quotaEnv.XFS_QUOTA_STATE ?? '',
      JSON.stringify({ ...state, [id ?? '']: { ...state[id ?? ''], bhard: 1024 } }),
    );
    await eventually(async () => expect(await limitOf('alice')).toBe(2 * 1024 ** 3), { timeoutMs: 15_000 });
  });

  it('looks at a window of folders per resync, and in turn repairs every folder changed by hand', async () => {
    const names = ['ua', 'ub', 'uc', 'ud', 'ue', 'uf', 'ug'];
    await lab.apply(homes({ emailFile: false }), ...names.map((n) => user(n)));
    await lab.start({ env: { SWARMKEEPER_XFS_QUOTA: STAND_IN, SWARMKEEPER_FOLDERS_PER_RESYNC: '2' } });
    await eventually(async () => {
      for (const n of names) expect((await lab.store.readStatus('User', n))?.sync).toBe('Synced');
    });
    expect((await lab.store.readStatus('HomeFolders', lab.name('nfs')))?.message).toBe(
      '7 users; each folder looked at on disk every 4 resyncs',
    );
    const drifted = (): string[] =>
      lab.logs.filter((l) => l.msg === 'drift detected' && l.kind === 'User').map((l) => String(l.name));
    const before = drifted().length;

    // Changed where no notification tells: only the sweep's lstat can find these.
    for (const n of names) await chmod(path.join(root, n), 0o700);
    await eventually(
      async () => {
        for (const n of names) expect((await stat(path.join(root, n))).mode & 0o7777).toBe(0o770);
      },
      { timeoutMs: 15_000 },
    );
    expect(drifted().slice(before).sort()).toEqual(names);
  });

  it('keeps project IDs across a controller restart and batches xfs_quota calls', async () => {
    const users = Array.from({ length: 1000 }, (_, i) => user(`user${String(i).padStart(4, '0')}`));
    await lab.apply(homes({ emailFile: false }), ...users);
    const started = Date.now();
    await startController();
    await eventually(
      async () => {
        const folders = (await readdir(root)).filter((f) => f.startsWith('user'));
        expect(folders).toHaveLength(1000);
        expect(Object.keys(await quotaState())).toHaveLength(1000);
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const convergedMs = Date.now() - started;
    expect(convergedMs).toBeLessThan(120_000);
    // 1,000 users, two commands each, at most 2,000 commands per process: far fewer processes than users.
    expect(await xfsRuns()).toBeLessThan(100);

    const idsBefore = await quotaState();
    await lab.stopAll();
    await rm(quotaEnv.XFS_QUOTA_STATE ?? '', { force: true });
    await startController();
    await eventually(async () => expect(Object.keys(await quotaState())).toHaveLength(1000), {
      timeoutMs: 60_000,
    });
    expect(Object.keys(await quotaState()).sort()).toEqual(Object.keys(idsBefore).sort());
  });

  it('retains the folder of a deleted user and lifts its quota; Archive moves it under .archive', async () => {
    await lab.apply(homes(), user('carol'), user('dave'), user('erin'));
    await startController();
    await eventually(async () => expect(await limitOf('carol')).toBe(1024 ** 3));
    await writeFile(path.join(root, 'carol', 'notebook.ipynb'), '{}');

    await lab.store.delete('User', 'carol');
    await eventually(async () =>
      expect((await lab.store.readStatus('User', 'carol'))?.sync).toBe('Retained'),
    );
    expect(await readFile(path.join(root, 'carol', 'notebook.ipynb'), 'utf8')).toBe('{}');
    expect(await limitOf('carol')).toBe(0);

    await lab.apply(homes({ reclaimPolicy: 'Archive' }), user('dave'), user('erin'));
    await eventually(async () => expect(await limitOf('dave')).toBe(1024 ** 3));
    await lab.store.delete('User', 'dave');
    await eventually(async () => expect((await lab.store.readStatus('User', 'dave'))?.sync).toBe('Archived'));
    const archived = await readdir(path.join(root, '.archive'));
    expect(archived).toContainEqual(expect.stringMatching(/^dave-\d{8}T\d{6}Z$/));
    await expect(stat(path.join(root, 'dave'))).rejects.toThrow();
  });
});

describe('per-user volumes', () => {
  it('replaces a stale volume while unused, and reports one in use', async () => {
    const template = {
      name: `${lab.names}-u-{username}`,
      driverOpts: { type: 'none', o: 'bind', device: `${root}/{username}` },
    };
    await lab.apply(homes({ quota: { driver: 'none' }, volume: template }), user('frank'));
    const volume = `${lab.names}-u-frank`;
    const device = (): Promise<string> => docker('volume', 'inspect', '-f', '{{.Options.device}}', volume);
    // A stale volume, as left by an old NFS address.
    await docker(
      'volume',
      'create',
      '--driver',
      'local',
      '--opt',
      'type=none',
      '--opt',
      'o=bind',
      '--opt',
      `device=${work}`,
      volume,
    );
    await startController();
    await eventually(async () => expect(await device()).toBe(`${root}/frank`));

    const session = lab.name('session');
    await docker(
      'run',
      '-d',
      '--name',
      session,
      '--label',
      `${TEST_RUN_LABEL}=${testRunId()}`,
      '-v',
      `${volume}:/home/jovyan/work`,
      'local/busybox:1',
      'sleep',
      '3600',
    );
    await lab.apply(
      homes({
        quota: { driver: 'none' },
        volume: { ...template, driverOpts: { ...template.driverOpts, device: `${work}/{username}` } },
      }),
      user('frank'),
    );
    await eventually(async () => {
      const status = await lab.store.readStatus('User', 'frank');
      expect(status?.sync).toBe('OutOfSync');
      expect(status?.message).toContain("frank's session must restart");
    });
    expect(await device()).toBe(`${root}/frank`);
  });
});

describe('discovery', () => {
  it('creates the folder of a user nobody registered, so the spawned task starts', async () => {
    await lab.apply(homes({ quota: { driver: 'none' } }));
    await startController();
    const service = lab.name('jupyter-grace');
    // As SwarmSpawner does: a service mounting a per-user volume whose folder does not exist yet.
    await spawnLikeSwarmSpawner(service, 'grace');
    await eventually(async () => expect((await stat(path.join(root, 'grace'))).isDirectory()).toBe(true), {
      timeoutMs: 15_000,
    });
    await eventually(
      async () => {
        const states = await docker(
          'service',
          'ps',
          '--filter',
          'desired-state=running',
          '--format',
          '{{.CurrentState}}',
          service,
        );
        expect(states).toMatch(/^Running/m);
      },
      { timeoutMs: 30_000 },
    );
    await eventually(async () => {
      const record = await lab.store.get('User', 'grace');
      expect(record?.ok && record.resource.metadata.annotations?.['swarmkeeper/discovered']).toBe('true');
    });
  });
});

describe('the pre-spawn hook', () => {
  it('makes the folder exist before the spawn, so the task runs on its first try', async () => {
    const tokenFile = path.join(work, 'token');
    await writeFile(tokenFile, 'hook-test-token\n');
    await lab.apply(homes({ quota: { driver: 'none' } }));
    await lab.start({ serveHttp: true, env: { SWARMKEEPER_API_TOKEN_FILE: tokenFile } });
    const api = `http://127.0.0.1:${lab.address?.port ?? 0}`;

    // What the hub's pre_spawn_hook runs, then what SwarmSpawner does.
    const hook = await run('python3', [
      'deploy/jupyterhub/swarmkeeper_hook.py',
      '--api',
      api,
      '--token-file',
      tokenFile,
      '--user',
      'heidi',
      '--email',
      'heidi@example.org',
      '--timeout',
      '20',
    ]);
    expect(hook.stderr).not.toMatch(/error/i);
    expect((await stat(path.join(root, 'heidi'))).isDirectory()).toBe(true);

    const service = lab.name('jupyter-heidi');
    await spawnLikeSwarmSpawner(service, 'heidi');
    await eventually(
      async () =>
        expect(await docker('service', 'ps', '--format', '{{.CurrentState}}', service)).toMatch(/^Running/),
      { timeoutMs: 30_000 },
    );
    // First try: the task history holds exactly one task, and it never failed.
    const history = (
      await docker('service', 'ps', '--format', '{{.CurrentState}}|{{.Error}}', service)
    ).split('\n');
    expect(history).toHaveLength(1);
    expect(history[0]).toMatch(/^Running[^|]*\|$/);
  });
});

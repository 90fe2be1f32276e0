/**
 * The quota side against the lab's real Redis and a stand-in `xfs_quota` (the lab kernel cannot
 * enforce XFS project quotas): test/fixtures/bin/xfs_quota logs its argv, keeps project state in a
 * JSON file and answers `report` in xfsprogs' exact layout. Every test has its own Redis prefix
 * and temp dir; the project files the driver manages are temp files, never /etc.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeySpace } from '../../src/desired/keys.js';
import { RedisProjectIdAllocator } from '../../src/desired/project-ids.js';
import {
  ProjectIdsExhaustedError,
  QuotaCommandError,
  QuotaEntryError,
  StoreUnavailableError,
} from '../../src/errors.js';
import { NoQuotaDriver, type QuotaEntry } from '../../src/homes/quota/driver.js';
import { XfsQuotaDriver, type XfsQuotaDriverOptions } from '../../src/homes/quota/xfs.js';
import { dropPrefix, rawRedis, uniquePrefix } from '../support/lab.js';

const execFileAsync = promisify(execFile);
const STAND_IN = fileURLToPath(new URL('../fixtures/bin/xfs_quota', import.meta.url));
const GiB = 1024 ** 3;

interface LoggedRun {
  readonly argv: string[];
  readonly projectsFile: string | null;
}

type StandInState = Record<string, { path?: string; bhard?: number; bsoft?: number; used?: number }>;

let redis: Redis;
let prefix: string;
let keys: KeySpace;
let dir: string;
let mountPoint: string;
let logFile: string;
let stateFile: string;

beforeAll(() => {
  redis = rawRedis();
});

afterAll(async () => {
  await redis.quit();
});

beforeEach(async () => {
  prefix = uniquePrefix('quota');
  keys = new KeySpace(prefix);
  dir = await mkdtemp(path.join(tmpdir(), 'sk-quota-'));
  mountPoint = path.join(dir, 'nfs');
  await mkdir(mountPoint);
  logFile = path.join(dir, 'xfs_quota.log');
  stateFile = path.join(dir, 'xfs_quota.state.json');
});

afterEach(async () => {
  await dropPrefix(redis, prefix);
  await rm(dir, { recursive: true, force: true });
});

function allocator(
  options: { firstId?: number; maxId?: number; client?: Redis } = {},
): RedisProjectIdAllocator {
  return new RedisProjectIdAllocator({
    redis: options.client ?? redis,
    keys,
    ...(options.firstId === undefined ? {} : { firstId: options.firstId }),
    ...(options.maxId === undefined ? {} : { maxId: options.maxId }),
  });
}

function driver(options: Partial<XfsQuotaDriverOptions> = {}): XfsQuotaDriver {
  return new XfsQuotaDriver({
    mountPoint,
    binary: STAND_IN,
    ...options,
    env: { XFS_QUOTA_LOG: logFile, XFS_QUOTA_STATE: stateFile, ...options.env },
  });
}

async function runs(): Promise<LoggedRun[]> {
  if (!existsSync(logFile)) return [];
  const text = await readFile(logFile, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LoggedRun);
}

async function standInState(): Promise<StandInState> {
  return JSON.parse(await readFile(stateFile, 'utf8')) as StandInState;
}

/** Folders under the export root, with IDs from the real allocator, as the controller would make them. */
async function folders(names: readonly string[], hardLimitBytes = GiB): Promise<QuotaEntry[]> {
  const ids = await allocator().allocate(names);
  return Promise.all(
    names.map(async (project) => {
      const folder = path.join(mountPoint, project);
      await mkdir(folder, { recursive: true });
      return { project, id: ids.get(project) ?? 0, path: folder, hardLimitBytes };
    }),
  );
}

describe('XfsQuotaDriver batching', () => {
  it('sets up 1,000 folders in ten xfs_quota runs of 200 commands, each entry once', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `user${String(i).padStart(4, '0')}`);
    const entries = await folders(names);

    await driver({ maxCommandsPerCall: 200 }).apply(entries);

    const logged = await runs();
    // One entry is `project -s` + `limit`: 2,000 commands at 200 per process.
    expect(logged).toHaveLength(Math.ceil((1000 * 2) / 200));
    const setUp: number[] = [];
    for (const run of logged) {
      const { argv } = run;
      expect(argv.slice(0, 2)).toEqual(['-x', '-D']);
      expect(argv.at(-1)).toBe(mountPoint);
      const commands = argv.slice(3, -1);
      expect(commands).toHaveLength(400);
      const lines = (run.projectsFile ?? '').trimEnd().split('\n');
      expect(lines).toHaveLength(100);
      for (let i = 0; i < commands.length; i += 4) {
        const id = Number(/^project -s (\d+)$/.exec(commands[i + 1] ?? '')?.[1]);
        expect(commands[i]).toBe('-c');
        expect(commands[i + 2]).toBe('-c');
        // The limit travels in the same process as the project it caps.
        expect(commands[i + 3]).toBe(`limit -p bhard=${GiB} ${id}`);
        setUp.push(id);
      }
      // Each run's private projects file holds exactly the folders that run sets up.
      const fileIds = lines.map((line) => Number(line.split(':')[0]));
      expect(fileIds).toEqual(setUp.slice(-100));
    }
    expect(new Set(setUp)).toEqual(new Set(entries.map((e) => e.id)));
    expect(setUp).toHaveLength(1000);

    const state = await standInState();
    for (const entry of entries) expect(state[String(entry.id)]).toEqual({ path: entry.path, bhard: GiB });
    // The private projects files are gone once each run is over.
    for (const run of logged) expect(existsSync(run.argv[2] ?? '')).toBe(false);
  });

  it('lifts 1,000 limits in five runs of 200 `limit` commands', async () => {
    const entries = await folders(Array.from({ length: 1000 }, (_, i) => `user${i}`));
    const quota = driver({ maxCommandsPerCall: 200 });
    await quota.apply(entries);
    const before = (await runs()).length;

    await quota.release(entries);

    const logged = (await runs()).slice(before);
    expect(logged).toHaveLength(5);
    for (const run of logged) {
      expect(run.argv[0]).toBe('-x');
      expect(run.argv.at(-1)).toBe(mountPoint);
      expect(run.argv.slice(1, -1).filter((a) => a !== '-c')).toHaveLength(200);
      expect(
        run.argv
          .slice(1, -1)
          .filter((a) => a !== '-c')
          .every((c) => /^limit -p bhard=0 \d+$/.test(c)),
      ).toBe(true);
    }
    const state = await standInState();
    for (const entry of entries) expect(state[String(entry.id)]?.bhard).toBe(0);
  });

  it('never splits an entry across processes when maxCommandsPerCall is odd', async () => {
    const entries = await folders(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    await driver({ maxCommandsPerCall: 5 }).apply(entries);
    const logged = await runs();
    // Two commands per entry, at most five per run: two entries per run.
    expect(logged.map((r) => r.argv.filter((a) => a === '-c').length)).toEqual([4, 4, 4, 2]);
  });

  it('uses a private projects file because batched `project -s -p` commands would retag each other', async () => {
    // The stand-in reproduces libfrog's fs_table: each -p path joins it as "any project" for the
    // rest of the process, so the second command also claims the first folder.
    const [a, b] = await folders(['a', 'b']);
    if (!a || !b) throw new Error('fixture');
    await execFileAsync(
      STAND_IN,
      ['-x', '-c', `project -s -p ${a.path} ${a.id}`, '-c', `project -s -p ${b.path} ${b.id}`, mountPoint],
      { env: { ...process.env, XFS_QUOTA_STATE: stateFile } },
    );
    const quirk = await standInState();
    expect(quirk[String(a.id)]?.path).toBeUndefined();
    expect(quirk[String(b.id)]?.path).toBe(b.path);

    await driver().apply([a, b]);
    const fixed = await standInState();
    expect(fixed[String(a.id)]?.path).toBe(a.path);
    expect(fixed[String(b.id)]?.path).toBe(b.path);
  });

  it('finds xfs_quota on PATH when no binary is given', async () => {
    const entries = await folders(['alice']);
    const quota = new XfsQuotaDriver({
      mountPoint,
      env: {
        PATH: `${path.dirname(STAND_IN)}:${process.env.PATH ?? ''}`,
        XFS_QUOTA_LOG: logFile,
        XFS_QUOTA_STATE: stateFile,
      },
    });
    await quota.apply(entries);
    expect(await runs()).toHaveLength(1);
  });
});

describe('RedisProjectIdAllocator', () => {
  it('keeps IDs across a controller restart and gives new names fresh ones', async () => {
    const first = await allocator().allocate(['alice', 'bob']);
    expect(first).toEqual(
      new Map([
        ['alice', 1000],
        ['bob', 1001],
      ]),
    );

    // A new instance on the same prefix is what a restarted controller builds.
    const restarted = allocator();
    const again = await restarted.allocate(['bob', 'carol', 'alice']);
    expect(again).toEqual(
      new Map([
        ['bob', 1001],
        ['carol', 1002],
        ['alice', 1000],
      ]),
    );
    expect(await restarted.lookup(['alice', 'nobody', 'carol'])).toEqual(
      new Map([
        ['alice', 1000],
        ['carol', 1002],
      ]),
    );
  });

  it('never hands out a released ID again, and gives a released name its old ID back', async () => {
    const ids = await allocator().allocate(['alice', 'bob', 'carol']);
    expect(await allocator().release('alice')).toBe(true);
    expect(await allocator().release('bob')).toBe(true);
    expect(await allocator().release('nobody')).toBe(false);

    const restarted = allocator();
    const fresh = await restarted.allocate(Array.from({ length: 50 }, (_, i) => `new${i}`));
    const taken = new Set(ids.values());
    for (const id of fresh.values()) expect(taken.has(id)).toBe(false);
    expect(Math.min(...fresh.values())).toBe(1003);

    const listed = await restarted.list();
    expect(listed.get('alice')).toEqual({ id: ids.get('alice'), released: true });
    expect(listed.get('carol')).toEqual({ id: ids.get('carol'), released: false });
    // Released names still resolve: the binding is permanent.
    expect((await restarted.lookup(['bob'])).get('bob')).toBe(ids.get('bob'));

    const back = await restarted.allocate(['alice']);
    expect(back.get('alice')).toBe(ids.get('alice'));
    expect((await restarted.list()).get('alice')?.released).toBe(false);
  });

  it('starts at firstId and refuses a batch that would pass maxId without writing any of it', async () => {
    const ids = allocator({ firstId: 5000, maxId: 5002 });
    expect(await ids.allocate(['a', 'b'])).toEqual(
      new Map([
        ['a', 5000],
        ['b', 5001],
      ]),
    );
    const refused = await ids.allocate(['a', 'c', 'd']).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ProjectIdsExhaustedError);
    expect(refused).toMatchObject({ code: 'SK_QUOTA_IDS_EXHAUSTED', requested: 2 });
    expect(await ids.lookup(['c', 'd'])).toEqual(new Map());
    // Known names still resolve when the counter is at its ceiling.
    expect(await ids.allocate(['b', 'a'])).toEqual(
      new Map([
        ['b', 5001],
        ['a', 5000],
      ]),
    );
  });

  it('gives each name exactly one ID under 20 concurrent overlapping batches', async () => {
    const clients = Array.from({ length: 20 }, () => rawRedis());
    try {
      const batches = Array.from({ length: 20 }, (_, i) =>
        Array.from({ length: 10 }, (_, k) => `user${(i * 3 + k) % 40}`),
      );
      const results = await Promise.all(
        batches.map((names, i) => allocator({ client: clients[i] ?? redis }).allocate(names)),
      );

      const seen = new Map<string, number>();
      for (const result of results) {
        for (const [name, id] of result) {
          expect(seen.get(name) ?? id).toBe(id);
          seen.set(name, id);
        }
      }
      expect(seen.size).toBe(40);
      const ids = [...seen.values()].sort((a, b) => a - b);
      // Distinct, and with no gaps: no batch took a counter value it did not keep.
      expect(ids).toEqual(Array.from({ length: 40 }, (_, i) => 1000 + i));
      expect(Number(await redis.get(keys.quota('next-id')))).toBe(1039);
    } finally {
      await Promise.all(clients.map((c) => c.quit()));
    }
  });

  it('reports a stored value that is not an ID instead of using it', async () => {
    await redis.hset(keys.quota('projects'), 'mangled', 'twelve');
    await expect(allocator().lookup(['mangled'])).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('XfsQuotaDriver without a shell', () => {
  it('hands shell syntax to xfs_quota as inert bytes', async () => {
    const tag = randomBytes(6).toString('hex');
    const pwned = path.join(tmpdir(), `pwned-${tag}`);
    // The export root itself has spaces and shell syntax: it travels as one argv element.
    const oddRoot = await mkdtemp(path.join(dir, 'export $(id); `id` '));
    const project = `x; touch ${pwned} $(id) \`touch ${pwned}\``;
    const folder = path.join(oddRoot, project);
    await mkdir(folder, { recursive: true });
    const files = { projects: path.join(dir, 'projects'), projid: path.join(dir, 'projid') };
    const entry: QuotaEntry = { project, id: 4242, path: folder, hardLimitBytes: 1024 * 1024 };

    await driver({ mountPoint: oddRoot, manageFiles: files }).apply([entry]);

    const [run] = await runs();
    expect(run?.argv).toEqual([
      '-x',
      '-D',
      run?.argv[2],
      '-c',
      'project -s 4242',
      '-c',
      'limit -p bhard=1048576 4242',
      oddRoot,
    ]);
    // The folder path reaches xfs_quota literally, through the private projects file.
    expect(run?.projectsFile).toBe(`4242:${folder}\n`);
    expect((await standInState())['4242']?.path).toBe(folder);
    expect(await readFile(files.projects, 'utf8')).toBe(`4242:${folder}\n`);
    expect(await readFile(files.projid, 'utf8')).toBe(`${project}:4242\n`);
    expect(existsSync(pwned)).toBe(false);
  });

  it('refuses entries that would retag the wrong tree or break a file line, running nothing', async () => {
    const quota = driver({
      manageFiles: { projects: path.join(dir, 'projects'), projid: path.join(dir, 'projid') },
    });
    const good: QuotaEntry = {
      project: 'alice',
      id: 1000,
      path: path.join(mountPoint, 'alice'),
      hardLimitBytes: GiB,
    };
    const bad: QuotaEntry[] = [
      { ...good, path: mountPoint },
      { ...good, path: '/etc' },
      { ...good, path: `${mountPoint}/../escape` },
      { ...good, path: `${mountPoint}/alice/` },
      { ...good, path: 'relative/alice' },
      { ...good, path: `${mountPoint}/alice\n1:/` },
      { ...good, project: 'alice:1' },
      { ...good, project: '#comment' },
      { ...good, project: '' },
      { ...good, id: 0 },
      { ...good, id: 0xffffffff },
      { ...good, id: 1.5 },
      { ...good, hardLimitBytes: -1 },
      { ...good, hardLimitBytes: Number.NaN },
    ];
    for (const entry of bad) {
      await expect(quota.apply([good, entry]), JSON.stringify(entry)).rejects.toBeInstanceOf(QuotaEntryError);
    }
    const twin: QuotaEntry = { ...good, project: 'bob', path: path.join(mountPoint, 'bob') };
    await expect(quota.apply([good, twin])).rejects.toBeInstanceOf(QuotaEntryError);
    await expect(quota.apply([good, { ...good, id: 1001 }])).rejects.toBeInstanceOf(QuotaEntryError);
    await expect(quota.release([{ ...good, id: -3 }])).rejects.toMatchObject({
      code: 'SK_QUOTA_INVALID_ENTRY',
    });
    expect(await runs()).toEqual([]);
    expect(existsSync(path.join(dir, 'projects'))).toBe(false);
  });
});

describe('XfsQuotaDriver report', () => {
  it('reads back in bytes what apply set, by project name', async () => {
    const [alice, bob, carol] = await folders(['alice', 'bob', 'carol']);
    if (!alice || !bob || !carol) throw new Error('fixture');
    const quota = driver();
    await quota.apply([alice, { ...bob, hardLimitBytes: 0 }, { ...carol, hardLimitBytes: 1500 }]);
    // Usage comes from the filesystem; the stand-in reads it from its state.
    const state = await standInState();
    state[String(alice.id)] = { ...state[String(alice.id)], used: 512 * 1024 * 1024 };
    await writeFile(stateFile, JSON.stringify(state));
    const before = (await runs()).length;

    const report = await quota.report();

    const [run] = (await runs()).slice(before);
    expect(run?.argv).toEqual(['-x', '-c', 'report -p -b -N -n', mountPoint]);
    expect(report.get('alice')).toEqual({ usedBytes: 512 * 1024 * 1024, hardLimitBytes: GiB });
    expect(report.get('bob')).toEqual({ usedBytes: 0, hardLimitBytes: 0 });
    // 1500 bytes went out as 2 KiB, the report's unit, rather than under one block ("no limit").
    expect(report.get('carol')).toEqual({ usedBytes: 0, hardLimitBytes: 2048 });
    // The default project, which nobody applied, keeps its number.
    expect(report.get('#0')).toEqual({ usedBytes: 0, hardLimitBytes: 0 });

    await quota.release([alice]);
    expect((await quota.report()).get('alice')).toEqual({ usedBytes: 512 * 1024 * 1024, hardLimitBytes: 0 });
  });

  it('names projects after a restart from the allocator, else as #ID', async () => {
    const entries = await folders(['alice', 'bob']);
    await driver().apply(entries);

    const bare = await driver().report();
    expect(bare.get(`#${entries[0]?.id}`)?.hardLimitBytes).toBe(GiB);

    const ids = allocator();
    const named = await driver({
      projectNames: async () => new Map([...(await ids.list())].map(([name, a]) => [a.id, name])),
    }).report();
    expect(named.get('alice')?.hardLimitBytes).toBe(GiB);
    expect(named.get('bob')?.hardLimitBytes).toBe(GiB);
  });

  it('NoQuotaDriver applies nothing and reports nothing', async () => {
    const none = new NoQuotaDriver();
    await none.apply(await folders(['alice']));
    await none.release([]);
    expect(await none.report()).toEqual(new Map());
    expect(await runs()).toEqual([]);
  });
});

describe('XfsQuotaDriver failures', () => {
  it('turns a non-zero exit into SK_QUOTA_COMMAND with trimmed, bounded stderr', async () => {
    const entries = await folders(['alice']);
    const failing = driver({
      env: {
        XFS_QUOTA_FAIL: '  xfs_quota: cannot set limits: No such process\n\n',
        XFS_QUOTA_FAIL_STATUS: '3',
      },
    });
    const error = await failing.apply(entries).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaCommandError);
    expect(error).toMatchObject({
      code: 'SK_QUOTA_COMMAND',
      detail: { exitCode: 3, stderr: 'xfs_quota: cannot set limits: No such process' },
    });

    const noisy = driver({ env: { XFS_QUOTA_FAIL: 'e'.repeat(50_000) } });
    const long = await noisy.report().catch((e: unknown) => e);
    expect(long).toBeInstanceOf(QuotaCommandError);
    expect((long as QuotaCommandError).detail.stderr?.length).toBeLessThan(2_100);
  });

  it('fails when a folder to set up does not exist, though xfs_quota exits 0', async () => {
    const [alice] = await folders(['alice']);
    if (!alice) throw new Error('fixture');
    const ghost: QuotaEntry = {
      project: 'ghost',
      id: 7777,
      path: path.join(mountPoint, 'ghost'),
      hardLimitBytes: GiB,
    };
    const error = await driver()
      .apply([alice, ghost])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaCommandError);
    expect((error as Error).message).toContain('7777');
    expect((await standInState())[String(alice.id)]?.path).toBe(alice.path);
  });

  it('says so when the binary is missing', async () => {
    const error = await driver({ binary: path.join(dir, 'no-such-xfs_quota') })
      .report()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaCommandError);
    expect((error as Error).message).toContain('not found');
  });
});

describe('XfsQuotaDriver manageFiles', () => {
  it('keeps /etc/projects and /etc/projid in step, leaving other lines alone', async () => {
    const files = { projects: path.join(dir, 'projects'), projid: path.join(dir, 'projid') };
    await writeFile(files.projects, '# set by hand\n42:/srv/other\n1000:/old/place/of/alice\n');
    await writeFile(files.projid, '# names\nother:42\nalice:999\n');
    await chmod(files.projects, 0o640);
    const [alice, bob] = await folders(['alice', 'bob']);
    if (!alice || !bob) throw new Error('fixture');
    expect(alice.id).toBe(1000);
    const quota = driver({ manageFiles: files });

    await quota.apply([alice, bob]);

    // The stale line for ID 1000 is replaced in place; bob's is appended; the rest is untouched.
    expect(await readFile(files.projects, 'utf8')).toBe(
      `# set by hand\n42:/srv/other\n1000:${alice.path}\n1001:${bob.path}\n`,
    );
    expect(await readFile(files.projid, 'utf8')).toBe('# names\nother:42\nalice:1000\nbob:1001\n');
    expect((await stat(files.projects)).mode & 0o777).toBe(0o640);

    await quota.apply([alice, bob]);
    expect(await readFile(files.projid, 'utf8')).toBe('# names\nother:42\nalice:1000\nbob:1001\n');

    await quota.release([bob]);
    expect(await readFile(files.projects, 'utf8')).toBe(`# set by hand\n42:/srv/other\n1000:${alice.path}\n`);
    expect(await readFile(files.projid, 'utf8')).toBe('# names\nother:42\nalice:1000\n');

    // Atomic rewrites leave no temporary files behind.
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // A restarted driver names projects from the projid file it keeps.
    expect((await driver({ manageFiles: files }).report()).get('alice')?.hardLimitBytes).toBe(GiB);
  });

  it('creates the files when they do not exist yet', async () => {
    const files = { projects: path.join(dir, 'new-projects'), projid: path.join(dir, 'new-projid') };
    const [alice] = await folders(['alice']);
    if (!alice) throw new Error('fixture');
    await driver({ manageFiles: files }).apply([alice]);
    expect(await readFile(files.projects, 'utf8')).toBe(`${alice.id}:${alice.path}\n`);
    expect(await readFile(files.projid, 'utf8')).toBe(`alice:${alice.id}\n`);
  });
});

/**
 * FolderManager on a real filesystem, under a fresh temp directory per test:
 *
 *   <base>/root      the HomeFolders root
 *   <base>/outside   a sentinel the tests try to reach through `..` and symlinks
 *
 * Runs as root in the lab (chown to 1000:100 needs it); the owner checks are skipped otherwise.
 */
import { execFileSync } from 'node:child_process';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HomeConflictError,
  HomeRootUnavailableError,
  HomeUnsafePathError,
  NotFoundError,
} from '../../src/errors.js';
import { ARCHIVE_DIR, EMAIL_FILE_MODE, FolderManager, resolveInside } from '../../src/homes/folders.js';
import { folderName } from '../../src/homes/naming.js';
import {
  planHomeFolder,
  planRemoval,
  type DesiredFolder,
  type FolderPlan,
} from '../../src/reconcile/home-folder.js';

const IS_ROOT = process.getuid?.() === 0;
const UID = IS_ROOT ? 1000 : (process.getuid?.() ?? 0);
const GID = IS_ROOT ? 100 : (process.getgid?.() ?? 0);

let base: string;
let root: string;
let outside: string;
let homes: FolderManager;
let outsideBefore: Snapshot;

type Snapshot = Record<
  string,
  { mode: number; uid: number; gid: number; size: number; mtimeMs: number; content?: string; link?: string }
>;

/** Everything under `dir`, by lstat, with file contents and link targets: what "untouched" means. */
async function snapshot(dir: string): Promise<Snapshot> {
  const out: Snapshot = {};
  const walk = async (current: string): Promise<void> => {
    const s = await lstat(current);
    const rel = path.relative(dir, current) || '.';
    out[rel] = { mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, mtimeMs: s.mtimeMs };
    if (s.isFile()) out[rel].content = await readFile(current, 'utf8');
    if (s.isSymbolicLink()) out[rel].link = await readlink(current);
    if (s.isDirectory()) for (const name of await readdir(current)) await walk(path.join(current, name));
  };
  await walk(dir);
  return out;
}

function desiredFor(folder: string, email?: string): DesiredFolder {
  return { folder, uid: UID, gid: GID, mode: 0o770, email };
}

async function converge(desired: DesiredFolder): Promise<FolderPlan> {
  const plan = planHomeFolder(desired, await homes.observe(desired.folder));
  await homes.apply(plan);
  return plan;
}

async function expectFolder(folder: string, mode = 0o770): Promise<void> {
  const s = await lstat(path.join(root, folder));
  expect(s.isDirectory()).toBe(true);
  expect(s.mode & 0o7777).toBe(mode);
  expect({ uid: s.uid, gid: s.gid }).toEqual({ uid: UID, gid: GID });
}

async function expectEmail(folder: string, email: string): Promise<void> {
  const file = path.join(root, `${folder}_email.txt`);
  const s = await lstat(file);
  expect(s.isFile()).toBe(true);
  expect(s.mode & 0o7777).toBe(EMAIL_FILE_MODE);
  expect({ uid: s.uid, gid: s.gid }).toEqual({ uid: UID, gid: GID });
  expect(await readFile(file, 'utf8')).toBe(email);
}

/** Nothing outside the root changed, and nothing new appeared beside it. */
async function expectOutsideUntouched(): Promise<void> {
  expect(await snapshot(outside)).toEqual(outsideBefore);
  expect((await readdir(base)).sort()).toEqual(['outside', 'root']);
}

beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'swarmkeeper-homes-'));
  root = path.join(base, 'root');
  outside = path.join(base, 'outside');
  await mkdir(root, { mode: 0o755 });
  await mkdir(path.join(outside, 'inner'), { recursive: true, mode: 0o755 });
  await writeFile(path.join(outside, 'sentinel.txt'), 'do not touch');
  await chmod(outside, 0o755);
  homes = new FolderManager({ root });
  outsideBefore = await snapshot(outside);
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('convergence', () => {
  it('creates the folder with owner, mode and e-mail file, then has nothing left to do', async () => {
    const plan = await converge(desiredFor('alice', 'alice@x.org'));
    expect(plan.actions.map((a) => a.type)).toEqual(['create', 'writeEmail']);
    await expectFolder('alice');
    await expectEmail('alice', 'alice@x.org');
    expect(await readdir(path.join(root, 'alice'))).toEqual([]);
    // No temp file left behind.
    expect((await readdir(root)).sort()).toEqual(['alice', 'alice_email.txt']);

    const again = await converge(desiredFor('alice', 'alice@x.org'));
    expect(again.actions).toEqual([]);
    expect(again.drift).toEqual([]);
  });

  it('sets the exact mode whatever the umask (setgid included)', async () => {
    const previous = process.umask(0o077);
    try {
      await converge({ ...desiredFor('g'), mode: 0o2770 });
    } finally {
      process.umask(previous);
    }
    await expectFolder('g', 0o2770);
  });

  it('recreates a deleted folder, empty', async () => {
    await converge(desiredFor('alice', 'alice@x.org'));
    await writeFile(path.join(root, 'alice', 'notebook.ipynb'), '{}');
    await rm(path.join(root, 'alice'), { recursive: true });

    const plan = await converge(desiredFor('alice', 'alice@x.org'));
    expect(plan.drift.map((d) => d.path)).toContain('folder');
    await expectFolder('alice');
    expect(await readdir(path.join(root, 'alice'))).toEqual([]);
  });

  it.runIf(IS_ROOT)('restores a changed owner', async () => {
    await converge(desiredFor('alice'));
    await chown(path.join(root, 'alice'), 0, 0);
    const plan = await converge(desiredFor('alice'));
    expect(plan.drift).toEqual([
      { path: 'owner', desired: { uid: UID, gid: GID }, actual: { uid: 0, gid: 0 } },
    ]);
    await expectFolder('alice');
  });

  it('restores a changed mode', async () => {
    await converge(desiredFor('alice'));
    await chmod(path.join(root, 'alice'), 0o755);
    const plan = await converge(desiredFor('alice'));
    expect(plan.drift).toEqual([{ path: 'mode', desired: '0770', actual: '0755' }]);
    await expectFolder('alice');
  });

  it.each([
    ['missing', undefined],
    ['wrong', 'bob@x.org'],
    ['with a trailing newline', 'alice@x.org\n'],
    ['empty', ''],
  ])('rewrites an e-mail file that is %s, with no trailing newline', async (_label, content) => {
    await converge(desiredFor('alice', 'alice@x.org'));
    const file = path.join(root, 'alice_email.txt');
    if (content === undefined) await rm(file);
    else await writeFile(file, content);

    const plan = await converge(desiredFor('alice', 'alice@x.org'));
    expect(plan.actions.map((a) => a.type)).toEqual(['writeEmail']);
    await expectEmail('alice', 'alice@x.org');
  });

  it('leaves the contents of an existing folder alone while repairing it', async () => {
    await converge(desiredFor('alice', 'alice@x.org'));
    await writeFile(path.join(root, 'alice', 'work.txt'), 'data');
    await chmod(path.join(root, 'alice'), 0o700);
    await converge(desiredFor('alice', 'alice@x.org'));
    expect(await readFile(path.join(root, 'alice', 'work.txt'), 'utf8')).toBe('data');
  });
});

describe('path safety', () => {
  const hostile = [
    '..',
    '../x',
    '../outside',
    'a/b',
    '/etc',
    'a\0b',
    '.',
    '',
    '.archive',
    '.hidden',
    'x'.repeat(256),
  ];

  it.each(hostile)('refuses %j everywhere, touching nothing', async (name) => {
    expect(folderName(name, 'plain').ok).toBe(false);
    expect(() => resolveInside(root, name)).toThrow(HomeUnsafePathError);
    await expect(homes.observe(name)).rejects.toBeInstanceOf(HomeUnsafePathError);
    // A plan forged by hand: the adapter refuses it on its own, not only because the planner would not make it.
    const forged: FolderPlan = {
      folder: name,
      actions: [
        { type: 'create', uid: UID, gid: GID, mode: 0o777 },
        { type: 'writeEmail', email: 'x', uid: UID, gid: GID },
      ],
      drift: [],
    };
    await expect(homes.apply(forged)).rejects.toBeInstanceOf(HomeUnsafePathError);
    await expect(
      homes.apply({ ...forged, actions: [{ type: 'chmod', mode: 0o777 }] }),
    ).rejects.toBeInstanceOf(HomeUnsafePathError);
    await expect(homes.archive(name, new Date())).rejects.toBeInstanceOf(HomeUnsafePathError);
    expect(await readdir(root)).toEqual([]);
    await expectOutsideUntouched();
  });

  it('never follows a symlink planted at the folder path', async () => {
    await symlink(outside, path.join(root, 'alice'));

    const observed = await homes.observe('alice');
    expect(observed?.kind).toBe('symlink');
    const plan = planHomeFolder(desiredFor('alice', 'alice@x.org'), observed);
    expect(plan.actions.map((a) => a.type)).toEqual(['conflict']);
    await homes.apply(plan);

    // Stale or forged plans: the adapter refuses at the open, with O_NOFOLLOW.
    for (const action of [
      { type: 'chmod', mode: 0o777 },
      { type: 'chown', uid: UID, gid: GID },
      { type: 'create', uid: UID, gid: GID, mode: 0o777 },
    ] as const) {
      await expect(homes.apply({ folder: 'alice', actions: [action], drift: [] })).rejects.toBeInstanceOf(
        HomeConflictError,
      );
    }
    await expect(homes.archive('alice', new Date())).rejects.toBeInstanceOf(HomeConflictError);
    expect(await readlink(path.join(root, 'alice'))).toBe(outside);
    await expectOutsideUntouched();
  });

  it('never follows a symlink planted at the e-mail file path', async () => {
    await converge(desiredFor('alice'));
    const email = path.join(root, 'alice_email.txt');
    await symlink(path.join(outside, 'sentinel.txt'), email);

    const observed = await homes.observe('alice');
    expect(observed).toMatchObject({ kind: 'directory', email: undefined, emailConflict: 'symlink' });
    const plan = planHomeFolder(desiredFor('alice', 'alice@x.org'), observed);
    expect(plan.actions.map((a) => a.type)).toEqual(['conflict']);
    await homes.apply(plan);
    await expect(
      homes.apply({
        folder: 'alice',
        actions: [{ type: 'writeEmail', email: 'evil', uid: UID, gid: GID }],
        drift: [],
      }),
    ).rejects.toBeInstanceOf(HomeConflictError);

    expect(await readlink(email)).toBe(path.join(outside, 'sentinel.txt'));
    await expectOutsideUntouched();
  });

  it('does not create a file through a dangling e-mail symlink', async () => {
    await converge(desiredFor('alice'));
    await symlink(path.join(outside, 'created-through-link'), path.join(root, 'alice_email.txt'));
    await homes.apply(planHomeFolder(desiredFor('alice', 'a@x'), await homes.observe('alice')));
    await expect(
      homes.apply({
        folder: 'alice',
        actions: [{ type: 'writeEmail', email: 'a@x', uid: UID, gid: GID }],
        drift: [],
      }),
    ).rejects.toBeInstanceOf(HomeConflictError);
    await expectOutsideUntouched();
  });

  it('does not hang on a FIFO at the e-mail path, and reports it', async () => {
    await converge(desiredFor('alice'));
    execFileSync('mkfifo', [path.join(root, 'alice_email.txt')]);
    expect(await homes.observe('alice')).toMatchObject({ emailConflict: 'other' });
    expect((await homes.observeAll()).get('alice')).toMatchObject({ emailConflict: 'other' });
  });

  it('treats a file where a folder belongs as a conflict (a User named like another e-mail file)', async () => {
    await converge(desiredFor('bob', 'bob@x.org'));
    const plan = planHomeFolder(desiredFor('bob_email.txt'), await homes.observe('bob_email.txt'));
    expect(plan.actions).toMatchObject([{ type: 'conflict', target: 'folder', found: 'other' }]);
    await homes.apply(plan);
    await expectEmail('bob', 'bob@x.org');
  });

  it('refuses to work on a missing root, and does not create it', async () => {
    const gone = new FolderManager({ root: path.join(base, 'not-mounted') });
    await expect(gone.observe('alice')).rejects.toBeInstanceOf(HomeRootUnavailableError);
    await expect(gone.observeAll()).rejects.toBeInstanceOf(HomeRootUnavailableError);
    await expect(gone.apply(planHomeFolder(desiredFor('alice', 'a@x'), undefined))).rejects.toBeInstanceOf(
      HomeRootUnavailableError,
    );
    await expectOutsideUntouched();
  });
});

describe('removal', () => {
  const NOW = new Date('2026-11-26T07:15:00.123Z');

  it('Retain leaves the folder, and the User added back gets it again', async () => {
    await converge(desiredFor('alice', 'alice@x.org'));
    await writeFile(path.join(root, 'alice', 'work.txt'), 'data');
    expect(planRemoval('Retain', await homes.observe('alice'))).toBe('retain');

    const plan = await converge(desiredFor('alice', 'alice@x.org'));
    expect(plan.actions).toEqual([]);
    expect(await readFile(path.join(root, 'alice', 'work.txt'), 'utf8')).toBe('data');
  });

  it('Archive moves the folder and its e-mail file under .archive with a UTC stamp', async () => {
    await converge(desiredFor('alice', 'alice@x.org'));
    await mkdir(path.join(root, 'alice', 'deep'));
    await writeFile(path.join(root, 'alice', 'deep', 'work.txt'), 'data');
    expect(planRemoval('Archive', await homes.observe('alice'))).toBe('archive');

    const archived = await homes.archive('alice', NOW);
    expect(archived).toBe(path.join(root, ARCHIVE_DIR, 'alice-20261126T071500Z'));
    expect(await readFile(path.join(archived, 'deep', 'work.txt'), 'utf8')).toBe('data');
    expect(await readFile(`${archived}_email.txt`, 'utf8')).toBe('alice@x.org');
    expect((await stat(path.join(root, ARCHIVE_DIR))).mode & 0o7777).toBe(0o700);
    expect(await readdir(root)).toEqual([ARCHIVE_DIR]);
    // The archive is the controller's: a resync does not see it as a user folder.
    expect((await homes.observeAll()).size).toBe(0);
    await expect(homes.archive('alice', NOW)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('adds a counter instead of replacing an archive with the same stamp', async () => {
    await converge(desiredFor('alice'));
    const first = await homes.archive('alice', NOW);
    await converge(desiredFor('alice'));
    await writeFile(path.join(root, 'alice', 'second.txt'), '2');
    const second = await homes.archive('alice', NOW);
    expect(second).toBe(`${first}-1`);
    expect(await readdir(first)).toEqual([]);
    expect(await readdir(second)).toEqual(['second.txt']);
  });

  it('refuses to archive through a symlinked .archive', async () => {
    await converge(desiredFor('alice'));
    await symlink(outside, path.join(root, ARCHIVE_DIR));
    await expect(homes.archive('alice', NOW)).rejects.toBeInstanceOf(HomeConflictError);
    await expectFolder('alice');
    await expectOutsideUntouched();
  });
});

describe('1,000 users', () => {
  it('converge through observeAll + plan + apply, then resync to nothing', async () => {
    const users = Array.from({ length: 1000 }, (_, i) => `user${i}@lab.example.org`);
    const desired = users.map((name) => {
      const named = folderName(name, 'md5');
      if (!named.ok) throw new Error(named.reason);
      return desiredFor(named.folder, name);
    });

    const started = performance.now();
    const observed = await homes.observeAll();
    const plans = desired.map((d) => planHomeFolder(d, observed.get(d.folder)));
    // The controller's workers apply in parallel; a handful at a time is enough for a filesystem.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < plans.length) {
          const plan = plans[next++];
          if (plan !== undefined) await homes.apply(plan);
        }
      }),
    );
    const convergeMs = performance.now() - started;

    const resyncStarted = performance.now();
    const after = await homes.observeAll();
    const resyncMs = performance.now() - resyncStarted;

    console.info(
      `1,000 users: converge ${convergeMs.toFixed(0)} ms (observeAll + plan + apply), resync observeAll ${resyncMs.toFixed(0)} ms`,
    );
    expect(after.size).toBe(2000); // folders and their e-mail files
    for (const d of desired) {
      const o = after.get(d.folder);
      expect(o).toEqual({ kind: 'directory', uid: UID, gid: GID, mode: 0o770, email: d.email });
      expect(planHomeFolder(d, o).actions).toEqual([]);
    }
    expect(convergeMs).toBeLessThan(60_000);
  });
});

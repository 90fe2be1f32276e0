/**
 * A folder archive cut short by `kill -9` is finished by the next controller: the real CLI with
 * SWARMKEEPER_FAULT_KILL_AT at the archive's fault points, the stand-in xfs_quota, real folders
 * and the lab's Redis. After the restart the folder and its e-mail file are in `.archive/` exactly
 * once, the quota is lifted, status says Archived, and the journal entry is gone.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FAULT_POINTS } from '../../src/actuate/index.js';
import { KeySpace } from '../../src/desired/keys.js';
import type { Resource } from '../../src/resources/resource.js';
import { ControllerLab } from '../support/controller.js';
import { ControllerProcess, ensureBuilt } from '../support/controller-process.js';
import { eventually } from '../support/eventually.js';
import { REDIS_URL } from '../support/lab.js';

const XFS_STAND_IN = path.resolve('test/fixtures/bin/xfs_quota');

let lab: ControllerLab;
let work: string;
const children: ControllerProcess[] = [];

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);
beforeEach(async () => {
  lab = new ControllerLab('archive-resume');
  await lab.open();
  work = await mkdtemp(path.join(tmpdir(), 'sk-archive-resume-'));
});
afterEach(async () => {
  for (const child of children.splice(0)) await child.stop();
  await lab.close();
  await rm(work, { recursive: true, force: true });
});

const exists = (file: string): Promise<boolean> =>
  stat(file).then(
    () => true,
    () => false,
  );

describe('kill -9 during a folder archive', () => {
  it('finishes an archive killed before the rename, or between folder and e-mail file, at the next start', async () => {
    const root = path.join(work, 'nfs');
    await mkdir(root);
    const statePath = path.join(work, 'xfs-state.json');
    const env = {
      REDIS_URL,
      SWARMKEEPER_PREFIX: lab.prefix,
      SWARMKEEPER_LEADER_ELECTION: 'false',
      SWARMKEEPER_RESYNC_SECONDS: '2',
      SWARMKEEPER_XFS_QUOTA: XFS_STAND_IN,
      XFS_QUOTA_STATE: statePath,
    };
    const start = (killAt?: string): ControllerProcess => {
      const child = ControllerProcess.start({
        ...env,
        ...(killAt !== undefined && { SWARMKEEPER_FAULT_KILL_AT: killAt }),
      });
      children.push(child);
      return child;
    };
    const killedAt = async (child: ControllerProcess, point: string): Promise<void> => {
      expect(await child.waitForExit(45_000), child.tail()).toEqual({ code: null, signal: 'SIGKILL' });
      expect(child.stderr).toContain(`fault injected at ${point}`);
    };
    const journalKey = new KeySpace(lab.prefix).archiveJournal;
    const journal = async (): Promise<Record<string, { target: string }>> =>
      Object.fromEntries(
        Object.entries(await lab.redis.hgetall(journalKey)).map(([k, v]) => [
          k,
          JSON.parse(v) as { target: string },
        ]),
      );
    const archiveDir = path.join(root, '.archive');
    const archived = async (folder: string): Promise<string[]> =>
      (await readdir(archiveDir).catch(() => [] as string[]))
        .filter((e) => e.startsWith(`${folder}-`))
        .sort();
    /** Quota limits the stand-in holds for a folder (bytes; 0 once lifted). */
    const quotaOf = async (folder: string): Promise<number | undefined> => {
      const state = JSON.parse(await readFile(statePath, 'utf8')) as Record<
        string,
        { path?: string; bhard?: number }
      >;
      return Object.values(state).find((e) => e.path === path.join(root, folder))?.bhard;
    };

    const homes = lab.resource('HomeFolders', lab.name('nfs'), {
      root,
      naming: 'plain',
      emailFile: true,
      quota: { driver: 'xfs', default: '1Gi' },
      reclaimPolicy: 'Archive',
    });
    const user = (name: string): Resource => lab.resource('User', name, { email: `${name}@example.org` });
    await lab.apply(homes, user('ann'), user('ben'));

    // 1. Killed before anything moved: written down, nothing moved yet.
    const first = start(FAULT_POINTS.homeArchiveBeforeRename);
    await first.waitForLog('controller running');
    await eventually(async () => {
      for (const name of ['ann', 'ben']) {
        expect(await readFile(path.join(root, `${name}_email.txt`), 'utf8')).toBe(`${name}@example.org`);
        expect(await quotaOf(name)).toBe(2 ** 30);
      }
    });
    for (const name of ['ann', 'ben']) await writeFile(path.join(root, name, 'work.ipynb'), name);
    await lab.store.delete('User', 'ann');
    await killedAt(first, FAULT_POINTS.homeArchiveBeforeRename);
    expect(await exists(path.join(root, 'ann', 'work.ipynb'))).toBe(true);
    const annTarget = (await journal()).ann?.target;
    expect(annTarget).toMatch(/^ann-\d{8}T\d{6}Z$/);

    // 2. The next start resumes it, and is itself killed between the folder and the e-mail file.
    const second = start(FAULT_POINTS.homeArchiveAfterFolderRename);
    await killedAt(second, FAULT_POINTS.homeArchiveAfterFolderRename);
    expect(await archived('ann')).toEqual([annTarget]);
    expect(await exists(path.join(root, 'ann_email.txt'))).toBe(true);
    expect((await journal()).ann?.target).toBe(annTarget);

    // 3. A clean start finishes it: the e-mail file joins the folder, status, quota, journal.
    const third = start();
    await third.waitForLog('home folder archived', { name: 'ann', resumed: true });
    expect(await archived('ann')).toEqual([annTarget, `${annTarget}_email.txt`]);
    expect(await readFile(path.join(archiveDir, annTarget!, 'work.ipynb'), 'utf8')).toBe('ann');
    expect(await exists(path.join(root, 'ann'))).toBe(false);
    expect(await exists(path.join(root, 'ann_email.txt'))).toBe(false);
    expect(await lab.redis.hget(`${lab.prefix}:status:User:ann`, 'sync')).toBe('Archived');
    expect(await quotaOf('ann')).toBe(0);
    expect(await journal()).toEqual({});
    await third.stop();

    // 4. Killed between the folder and the e-mail file of an archive it began itself.
    const fourth = start(FAULT_POINTS.homeArchiveAfterFolderRename);
    await fourth.waitForLog('controller running');
    await lab.store.delete('User', 'ben');
    await killedAt(fourth, FAULT_POINTS.homeArchiveAfterFolderRename);
    const benTarget = (await journal()).ben?.target;
    expect(await archived('ben')).toEqual([benTarget]);
    expect(await exists(path.join(root, 'ben_email.txt'))).toBe(true);

    const fifth = start();
    await fifth.waitForLog('home folder archived', { name: 'ben', resumed: true });
    expect(await archived('ben')).toEqual([benTarget, `${benTarget}_email.txt`]);
    expect(await readFile(path.join(archiveDir, benTarget!, 'work.ipynb'), 'utf8')).toBe('ben');
    expect(await lab.redis.hget(`${lab.prefix}:status:User:ben`, 'sync')).toBe('Archived');
    expect(await quotaOf('ben')).toBe(0);
    expect(await journal()).toEqual({});

    // Nothing more happens on later passes: still one copy of each.
    const passes = fifth.logsWith('full sync').length;
    await eventually(() => expect(fifth.logsWith('full sync').length).toBeGreaterThanOrEqual(passes + 2), {
      timeoutMs: 15_000,
    });
    expect(await archived('ann')).toEqual([annTarget, `${annTarget}_email.txt`]);
    expect(await archived('ben')).toEqual([benTarget, `${benTarget}_email.txt`]);
    expect(fifth.logsWith('home folder archived')).toHaveLength(1);
  }, 180_000);

  it('starts and keeps reconciling when the archive journal was edited into something unreadable', async () => {
    const root = path.join(work, 'nfs');
    await mkdir(root);
    await lab.redis.hset(new KeySpace(lab.prefix).archiveJournal, 'zed', '{"user": 1');
    const homes = lab.resource('HomeFolders', lab.name('nfs'), {
      root,
      naming: 'plain',
      quota: { driver: 'none' },
    });
    await lab.apply(homes, lab.resource('User', 'amy', { email: 'amy@example.org' }));
    const child = ControllerProcess.start({
      REDIS_URL,
      SWARMKEEPER_PREFIX: lab.prefix,
      SWARMKEEPER_LEADER_ELECTION: 'false',
      SWARMKEEPER_RESYNC_SECONDS: '1',
    });
    children.push(child);
    await child.waitForLog('controller running');
    await eventually(async () => expect(await exists(path.join(root, 'amy'))).toBe(true));
    const passes = child.logsWith('full sync').length;
    await eventually(() => expect(child.logsWith('full sync').length).toBeGreaterThanOrEqual(passes + 2), {
      timeoutMs: 10_000,
    });
    expect(child.logsWith('archive journal unreadable')).toHaveLength(1);
    expect(child.logsWith('desired store unavailable; repairing from cached state')).toEqual([]);
  }, 60_000);
});

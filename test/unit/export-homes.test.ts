/**
 * Home folders in the seed's layout → HomeFolders and Users, on a temporary root. Quotas are read
 * back through the real XfsQuotaDriver running the stand-in xfs_quota (test/fixtures/bin).
 */
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportHomes, unescapeFolder, usernameOf } from '../../src/export/homes.js';
import { escapedFolder, md5Folder } from '../../src/homes/naming.js';
import { XfsQuotaDriver } from '../../src/homes/quota/xfs.js';
import type { Resource } from '../../src/resources/resource.js';

const STAND_IN = path.resolve('test/fixtures/bin/xfs_quota');
const GiB = 1024 ** 3;

let work: string;
let root: string;

beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sk-export-homes-'));
  root = path.join(work, 'nfs');
  await mkdir(root);
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** What the seed's spawner did for a user: the folder 0777, the e-mail file without newline, the marker. */
async function seedUser(
  folder: string,
  email: string | undefined,
  options: { marker?: boolean } = {},
): Promise<void> {
  await mkdir(path.join(root, folder));
  await chmod(path.join(root, folder), 0o777);
  if (email !== undefined) await writeFile(path.join(root, `${folder}_email.txt`), email);
  if (options.marker) await writeFile(path.join(root, `${folder}_QUOTA_NOT_SET`), '');
}

function byKind(resources: readonly Resource[], kind: string): Resource[] {
  return resources.filter((r) => r.kind === kind);
}

describe('exportHomes', () => {
  it('md5 folders of the seed become Users named by their e-mail; unknowable ones are skipped with a warning', async () => {
    await seedUser(md5Folder('alice@example.org'), 'alice@example.org');
    await seedUser(md5Folder('bob@example.org'), 'bob@example.org', { marker: true });
    await seedUser(md5Folder('carol'), undefined);
    await seedUser('0123456789abcdef0123456789abcdef', 'dave@example.org');

    const { resources, warnings } = await exportHomes({ root, naming: 'md5', name: 'homes', quota: 'none' });
    expect(byKind(resources, 'HomeFolders').map((r) => r.spec)).toEqual([
      // The seed's folders are root's, 0777: adopting keeps them as they are.
      {
        root,
        naming: 'md5',
        owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
        mode: '0777',
        emailFile: true,
      },
    ]);
    expect(byKind(resources, 'User').map((r) => [r.metadata.name, r.spec])).toEqual(
      [
        ['bob@example.org', { email: 'bob@example.org' }],
        ['alice@example.org', { email: 'alice@example.org' }],
      ].sort(([a], [b]) => (md5Folder(a as string) < md5Folder(b as string) ? -1 : 1)),
    );
    expect(resources.every((r) => r.metadata.annotations?.['swarmkeeper/adopt'] === 'true')).toBe(true);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining(`${md5Folder('carol')}: md5 naming, and no e-mail file`),
        expect.stringContaining(
          '0123456789abcdef0123456789abcdef: md5 naming, and md5 of its e-mail (dave@example.org) is not the folder name',
        ),
      ]),
    );
  });

  it('plain and escaped folders name their users; symlinks and stray files are left alone', async () => {
    await seedUser('alice', 'alice@example.org');
    await seedUser('b.ob', undefined);
    await writeFile(path.join(root, 'notes.txt'), 'x');
    await symlink('/etc', path.join(root, 'evil'));
    const plain = await exportHomes({ root, naming: 'plain', name: 'homes', quota: 'none' });
    expect(byKind(plain.resources, 'User').map((r) => r.metadata.name)).toEqual(['alice', 'b.ob']);
    expect(plain.warnings).toEqual([expect.stringContaining('evil: a symlink')]);

    await seedUser(escapedFolder('a.b@x'), undefined);
    const escaped = await exportHomes({ root, naming: 'escaped', name: 'homes', quota: 'none' });
    expect(byKind(escaped.resources, 'User').map((r) => r.metadata.name)).toEqual(['a.b@x', 'alice']);
    expect(escaped.warnings.some((w) => w.includes('b.ob: not a name dockerspawner escaping'))).toBe(true);
  });

  it('owner and mode follow most folders, naming the ones the controller will change', async () => {
    await seedUser('a', undefined);
    await seedUser('b', undefined);
    await seedUser('c', undefined);
    await chmod(path.join(root, 'c'), 0o750);
    const { resources, warnings } = await exportHomes({
      root,
      naming: 'plain',
      name: 'homes',
      quota: 'none',
    });
    expect(byKind(resources, 'HomeFolders')[0]?.spec).toMatchObject({ mode: '0777' });
    expect(warnings).toEqual([expect.stringMatching(/^home folder c is \d+:\d+ 0750, unlike most/)]);
  });

  it('reads quotas back with the XFS driver: the common limit is the default, others per user, markers get the default', async () => {
    const alice = md5Folder('alice@example.org');
    const bob = md5Folder('bob@example.org');
    const carol = md5Folder('carol@example.org');
    const erin = md5Folder('erin@example.org');
    await seedUser(alice, 'alice@example.org');
    await seedUser(bob, 'bob@example.org', { marker: true });
    await seedUser(carol, 'carol@example.org');
    await seedUser(erin, 'erin@example.org');
    const state = path.join(work, 'xfs.json');
    await writeFile(
      state,
      JSON.stringify({
        '1001': { path: path.join(root, alice), bhard: GiB, used: 4096 },
        '1002': { path: path.join(root, carol), bhard: 2 * GiB },
        '1003': { path: path.join(root, erin), bhard: GiB },
        // The seed's broken ID arithmetic: two folders under one ID cannot be told apart.
        '7': { bhard: 5 * GiB },
      }),
    );
    const projects = path.join(work, 'projects');
    await writeFile(
      projects,
      [
        `1001:${path.join(root, alice)}`,
        `1002:${path.join(root, carol)}`,
        `7:${path.join(root, bob)}`,
        `7:${path.join(root, 'x')}`,
        '# comment',
        '',
      ].join('\n'),
    );
    const projid = path.join(work, 'projid');
    await writeFile(projid, `${erin}:1003\n`);
    const { resources, warnings } = await exportHomes({
      root,
      naming: 'md5',
      name: 'homes',
      quota: 'xfs',
      projectsFile: projects,
      projidFile: projid,
      quotaDriver: (projectNames) =>
        new XfsQuotaDriver({
          mountPoint: root,
          binary: STAND_IN,
          projectNames,
          env: { XFS_QUOTA_STATE: state },
        }),
    });
    expect(byKind(resources, 'HomeFolders')[0]?.spec).toMatchObject({
      quota: { driver: 'xfs', default: '1Gi' },
    });
    const quotas = Object.fromEntries(
      byKind(resources, 'User').map((r) => [r.metadata.name, (r.spec as { quota?: unknown }).quota]),
    );
    expect(quotas).toEqual({
      'alice@example.org': undefined,
      'bob@example.org': undefined,
      'carol@example.org': '2Gi',
      'erin@example.org': undefined,
    });
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining('XFS project ID 7 belongs to'),
        expect.stringContaining(`${bob} has no quota yet`),
      ]),
    );
  });

  it('a missing root is an error, never an empty export', async () => {
    await expect(
      exportHomes({ root: path.join(work, 'absent'), naming: 'plain', name: 'h', quota: 'none' }),
    ).rejects.toThrow(/unavailable/);
  });
});

describe('usernameOf and unescapeFolder', () => {
  it.each([
    { folder: 'alice', naming: 'plain' as const, email: undefined, expected: 'alice' },
    { folder: md5Folder('a@x.org'), naming: 'md5' as const, email: 'a@x.org', expected: 'a@x.org' },
    { folder: 'a-2eb-40x', naming: 'escaped' as const, email: undefined, expected: 'a.b@x' },
    { folder: '-41lice', naming: 'escaped' as const, email: undefined, expected: 'Alice' },
  ])('$naming $folder → $expected', ({ folder, naming, email, expected }) => {
    expect(usernameOf(folder, naming, email)).toBe(expected);
  });
  it.each(['A', 'a-zz', 'a-2', 'a-2E'])('%s cannot have come from dockerspawner escaping', (folder) => {
    expect(unescapeFolder(folder)).toBeUndefined();
  });
});

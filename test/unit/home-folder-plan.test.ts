import { describe, expect, it } from 'vitest';
import {
  desiredFolderFor,
  formatMode,
  hasConflict,
  parseMode,
  planHomeFolder,
  planRemoval,
  type DesiredFolder,
  type FolderAction,
  type ObservedFolder,
} from '../../src/reconcile/home-folder.js';

const desired: DesiredFolder = { folder: 'alice', uid: 1000, gid: 100, mode: 0o770, email: 'alice@x.org' };
const noEmail: DesiredFolder = { folder: 'alice', uid: 1000, gid: 100, mode: 0o770 };
const good: ObservedFolder = { kind: 'directory', uid: 1000, gid: 100, mode: 0o770, email: 'alice@x.org' };

interface Case {
  readonly name: string;
  readonly desired: DesiredFolder;
  readonly observed: ObservedFolder | undefined;
  readonly actions: readonly FolderAction['type'][];
  readonly drift: readonly string[];
}

const CASES: readonly Case[] = [
  { name: 'in sync', desired, observed: good, actions: [], drift: [] },
  {
    name: 'missing folder: create, then e-mail file',
    desired,
    observed: undefined,
    actions: ['create', 'writeEmail'],
    drift: ['folder', 'emailFile'],
  },
  {
    name: 'missing folder, emailFile off',
    desired: noEmail,
    observed: undefined,
    actions: ['create'],
    drift: ['folder'],
  },
  {
    name: 'owner changed',
    desired,
    observed: { ...good, uid: 0, gid: 0 },
    actions: ['chown'],
    drift: ['owner'],
  },
  {
    name: 'group alone changed',
    desired,
    observed: { ...good, gid: 0 },
    actions: ['chown'],
    drift: ['owner'],
  },
  { name: 'mode changed', desired, observed: { ...good, mode: 0o755 }, actions: ['chmod'], drift: ['mode'] },
  {
    name: 'owner and mode changed: chown before chmod',
    desired,
    observed: { ...good, uid: 0, mode: 0o777 },
    actions: ['chown', 'chmod'],
    drift: ['owner', 'mode'],
  },
  {
    name: 'setgid lost',
    desired: { ...desired, mode: 0o2770 },
    observed: good,
    actions: ['chmod'],
    drift: ['mode'],
  },
  {
    name: 'e-mail file missing',
    desired,
    observed: { ...good, email: undefined },
    actions: ['writeEmail'],
    drift: ['emailFile'],
  },
  {
    name: 'e-mail file with a trailing newline',
    desired,
    observed: { ...good, email: 'alice@x.org\n' },
    actions: ['writeEmail'],
    drift: ['emailFile'],
  },
  {
    name: 'e-mail file wrong',
    desired,
    observed: { ...good, email: 'bob@x.org' },
    actions: ['writeEmail'],
    drift: ['emailFile'],
  },
  {
    name: 'emailFile off: an existing file is left alone',
    desired: noEmail,
    observed: { ...good, email: 'old' },
    actions: [],
    drift: [],
  },
  {
    name: 'symlink at the folder path',
    desired,
    observed: { ...good, kind: 'symlink', uid: 0, gid: 0, mode: 0o777 },
    actions: ['conflict'],
    drift: ['folder'],
  },
  {
    name: 'file at the folder path',
    desired,
    observed: { ...good, kind: 'other', uid: 0, mode: 0o644, email: undefined },
    actions: ['conflict'],
    drift: ['folder'],
  },
  {
    name: 'symlink at the e-mail path: the folder is still repaired',
    desired,
    observed: { ...good, mode: 0o755, email: undefined, emailConflict: 'symlink' },
    actions: ['chmod', 'conflict'],
    drift: ['mode', 'emailFile'],
  },
  {
    name: 'e-mail path conflict ignored when emailFile is off',
    desired: noEmail,
    observed: { ...good, email: undefined, emailConflict: 'other' },
    actions: [],
    drift: [],
  },
];

describe('planHomeFolder', () => {
  it.each(CASES)('$name', (c) => {
    const plan = planHomeFolder(c.desired, c.observed);
    expect(plan.folder).toBe(c.desired.folder);
    expect(plan.actions.map((a) => a.type)).toEqual(c.actions);
    expect(plan.drift.map((d) => d.path)).toEqual(c.drift);
    expect(hasConflict(plan)).toBe(c.actions.includes('conflict'));
  });

  it('creates with owner and mode, and writes the address as is', () => {
    expect(planHomeFolder(desired, undefined)).toEqual({
      folder: 'alice',
      actions: [
        { type: 'create', uid: 1000, gid: 100, mode: 0o770 },
        { type: 'writeEmail', email: 'alice@x.org', uid: 1000, gid: 100 },
      ],
      drift: [
        { path: 'folder', desired: 'directory', actual: 'missing' },
        { path: 'emailFile', desired: 'alice@x.org', actual: null },
      ],
    });
  });

  it('reports drift in the manifest vocabulary', () => {
    const plan = planHomeFolder(desired, { ...good, uid: 0, gid: 0, mode: 0o755, email: 'bob' });
    expect(plan.drift).toEqual([
      { path: 'owner', desired: { uid: 1000, gid: 100 }, actual: { uid: 0, gid: 0 } },
      { path: 'mode', desired: '0770', actual: '0755' },
      { path: 'emailFile', desired: 'alice@x.org', actual: 'bob' },
    ]);
  });

  it('describes a conflict without acting on it', () => {
    const plan = planHomeFolder(desired, { ...good, kind: 'symlink' });
    expect(plan.actions).toEqual([
      {
        type: 'conflict',
        target: 'folder',
        found: 'symlink',
        message: expect.stringContaining('symlink') as unknown,
      },
    ]);
  });
});

describe('planRemoval', () => {
  it.each<['Retain' | 'Archive', ObservedFolder | undefined, 'retain' | 'archive']>([
    ['Retain', good, 'retain'],
    ['Archive', good, 'archive'],
    ['Archive', undefined, 'retain'],
    ['Archive', { ...good, kind: 'symlink' }, 'retain'],
    ['Archive', { ...good, kind: 'other' }, 'retain'],
    ['Retain', undefined, 'retain'],
  ])('%s with %j → %s', (policy, observed, expected) => {
    expect(planRemoval(policy, observed)).toBe(expected);
  });
});

describe('modes', () => {
  it.each([
    ['0770', 0o770],
    ['770', 0o770],
    ['0755', 0o755],
    ['2770', 0o2770],
    ['02770', 0o2770],
  ])('parses %s', (text, value) => {
    expect(parseMode(text)).toBe(value);
  });

  it.each(['', '0778', '77', '0o770', '12345', 'rwx'])('refuses %j', (text) => {
    expect(parseMode(text)).toBeUndefined();
  });

  it.each([
    [0o770, '0770'],
    [0o2770, '2770'],
    [0o40755, '0755'],
    [0o7, '0007'],
  ])('formats %o as %s', (value, text) => {
    expect(formatMode(value)).toBe(text);
  });
});

describe('desiredFolderFor', () => {
  it('applies the defaults: 1000:100, 0770, no e-mail file', () => {
    expect(desiredFolderFor({}, { name: 'alice' }, 'f')).toEqual({
      folder: 'f',
      uid: 1000,
      gid: 100,
      mode: 0o770,
      email: undefined,
    });
  });

  it('writes the User e-mail, else its name, when emailFile is on', () => {
    const spec = { emailFile: true, owner: { uid: 1001, gid: 1001 }, mode: '0750' };
    expect(desiredFolderFor(spec, { name: 'a.b@x', email: 'ab@x.org' }, 'f')).toMatchObject({
      uid: 1001,
      gid: 1001,
      mode: 0o750,
      email: 'ab@x.org',
    });
    expect(desiredFolderFor(spec, { name: 'a.b@x' }, 'f').email).toBe('a.b@x');
  });
});

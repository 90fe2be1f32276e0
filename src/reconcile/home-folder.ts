/**
 * Per-user home folders: what a User's folder should look like, compared with what the
 * filesystem adapter (src/homes/folders.ts) saw, as a list of actions. Pure: the folder name
 * arrives already computed (src/homes/naming.ts hashes, which needs node:crypto).
 */
import type { DriftEntry } from '../desired/store.js';
import type { HomeFoldersSpec } from '../resources/kinds/homefolders.js';

/** jovyan in the Jupyter docker-stacks images: a folder it cannot write is a broken notebook. */
export const DEFAULT_HOME_OWNER = { uid: 1000, gid: 100 } as const;
/** Owner and group only: the seed's 0777 let every user on the export into every folder. */
export const DEFAULT_HOME_MODE = '0770';
/** The seed writes the e-mail file, but only Google-authenticated hubs have an e-mail as name. */
export const DEFAULT_EMAIL_FILE = false;
export const DEFAULT_HOME_RECLAIM_POLICY = 'Retain';

export type ReclaimPolicy = 'Retain' | 'Archive';

export interface DesiredFolder {
  readonly folder: string;
  readonly uid: number;
  readonly gid: number;
  /** Permission bits, e.g. 0o770; setgid and sticky allowed. */
  readonly mode: number;
  /** Content of `<folder>_email.txt`; undefined when the HomeFolders has `emailFile` off. */
  readonly email?: string | undefined;
}

export type ObservedKind = 'directory' | 'symlink' | 'other';

export interface ObservedFolder {
  /** What lstat found at the folder path; symlinks are reported, never followed. */
  readonly kind: ObservedKind;
  readonly uid: number;
  readonly gid: number;
  /** Permission bits only (`st_mode & 0o7777`). */
  readonly mode: number;
  /** Content of the e-mail file; undefined when it is missing or not a regular file. */
  readonly email: string | undefined;
  /** Set when a symlink or a non-regular file sits at the e-mail file path. */
  readonly emailConflict?: 'symlink' | 'other' | undefined;
}

export type FolderAction =
  /** mkdir, then chown and chmod explicitly: mkdir's mode is filtered by the umask. */
  | { readonly type: 'create'; readonly uid: number; readonly gid: number; readonly mode: number }
  | { readonly type: 'chown'; readonly uid: number; readonly gid: number }
  | { readonly type: 'chmod'; readonly mode: number }
  /** Atomic replace of `<folder>_email.txt`, no trailing newline, owned like the folder. */
  | { readonly type: 'writeEmail'; readonly email: string; readonly uid: number; readonly gid: number }
  /** Reported, never acted on: a person must look at what is there. */
  | {
      readonly type: 'conflict';
      readonly target: 'folder' | 'emailFile';
      readonly found: 'symlink' | 'other';
      readonly message: string;
    };

export interface FolderPlan {
  readonly folder: string;
  readonly actions: readonly FolderAction[];
  readonly drift: readonly DriftEntry[];
}

/** `"0770"`, `"770"` or `"2770"` → number; undefined for anything that is not 3–4 octal digits. */
export function parseMode(mode: string): number | undefined {
  if (!/^0?[0-7]{3,4}$/.test(mode)) return undefined;
  const value = Number.parseInt(mode, 8);
  return value <= 0o7777 ? value : undefined;
}

/** Four octal digits, as the manifest spells modes, so drift reads the same as the spec. */
export function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * The desired folder of one User under a HomeFolders spec. The e-mail file holds the User's
 * `email`, else its name: with Google auth, the seed's hub names users by e-mail.
 */
export function desiredFolderFor(
  spec: Pick<HomeFoldersSpec, 'owner' | 'mode' | 'emailFile'>,
  user: { readonly name: string; readonly email?: string | undefined },
  folder: string,
): DesiredFolder {
  const mode = parseMode(spec.mode ?? DEFAULT_HOME_MODE);
  if (mode === undefined) throw new RangeError(`invalid mode ${JSON.stringify(spec.mode)}`);
  return {
    folder,
    uid: spec.owner?.uid ?? DEFAULT_HOME_OWNER.uid,
    gid: spec.owner?.gid ?? DEFAULT_HOME_OWNER.gid,
    mode,
    email: (spec.emailFile ?? DEFAULT_EMAIL_FILE) ? (user.email ?? user.name) : undefined,
  };
}

function conflictMessage(target: 'folder' | 'emailFile', folder: string, found: 'symlink' | 'other'): string {
  const where = target === 'folder' ? `folder ${folder}` : `e-mail file ${folder}_email.txt`;
  const what =
    found === 'symlink'
      ? 'a symlink'
      : target === 'folder'
        ? 'something that is not a directory'
        : 'something that is not a regular file';
  return `${what} sits at the ${where}; left untouched`;
}

/** What to do so that `observed` (undefined: nothing at the path) becomes `desired`. */
export function planHomeFolder(desired: DesiredFolder, observed: ObservedFolder | undefined): FolderPlan {
  const actions: FolderAction[] = [];
  const drift: DriftEntry[] = [];
  const { folder, uid, gid, mode, email } = desired;

  if (observed === undefined) {
    actions.push({ type: 'create', uid, gid, mode });
    drift.push({ path: 'folder', desired: 'directory', actual: 'missing' });
    // Without a folder the adapter does not read the e-mail file: rewriting it is idempotent.
    if (email !== undefined) {
      actions.push({ type: 'writeEmail', email, uid, gid });
      drift.push({ path: 'emailFile', desired: email, actual: null });
    }
    return { folder, actions, drift };
  }

  if (observed.kind !== 'directory') {
    // A symlink could point anywhere (another user's folder, /etc); anything else is not ours.
    // The e-mail file is left alone too: the user it belongs to is in doubt.
    actions.push({
      type: 'conflict',
      target: 'folder',
      found: observed.kind,
      message: conflictMessage('folder', folder, observed.kind),
    });
    drift.push({ path: 'folder', desired: 'directory', actual: observed.kind });
    return { folder, actions, drift };
  }

  if (observed.uid !== uid || observed.gid !== gid) {
    actions.push({ type: 'chown', uid, gid });
    drift.push({ path: 'owner', desired: { uid, gid }, actual: { uid: observed.uid, gid: observed.gid } });
  }
  // After chown: chown may clear setgid, which a 2770 mode wants back.
  if ((observed.mode & 0o7777) !== (mode & 0o7777)) {
    actions.push({ type: 'chmod', mode });
    drift.push({ path: 'mode', desired: formatMode(mode), actual: formatMode(observed.mode) });
  }
  if (email !== undefined) {
    if (observed.emailConflict !== undefined) {
      actions.push({
        type: 'conflict',
        target: 'emailFile',
        found: observed.emailConflict,
        message: conflictMessage('emailFile', folder, observed.emailConflict),
      });
      drift.push({ path: 'emailFile', desired: email, actual: { found: observed.emailConflict } });
    } else if (observed.email !== email) {
      actions.push({ type: 'writeEmail', email, uid, gid });
      drift.push({ path: 'emailFile', desired: email, actual: observed.email ?? null });
    }
  }
  return { folder, actions, drift };
}

export function hasConflict(plan: FolderPlan): boolean {
  return plan.actions.some((a) => a.type === 'conflict');
}

/**
 * What deleting a User does to its folder. Only a real directory is archived: nothing at the
 * path, or a symlink or file there, is left as it is whatever the policy says.
 */
export function planRemoval(
  policy: ReclaimPolicy,
  observed: ObservedFolder | undefined,
): 'retain' | 'archive' {
  return policy === 'Archive' && observed?.kind === 'directory' ? 'archive' : 'retain';
}

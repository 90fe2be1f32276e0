/**
 * The filesystem side of HomeFolders: reads what is under the root and carries out the plans of
 * src/reconcile/home-folder.ts. Users own what is inside their folder and may plant symlinks
 * there; the root itself is the controller's. So every path is one checked entry directly under
 * the root, and nothing at a folder or e-mail file path is ever followed.
 */
import { randomBytes } from 'node:crypto';
import { constants, lstatSync, type Dirent, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  HomeConflictError,
  HomeRootUnavailableError,
  HomeUnsafePathError,
  NotFoundError,
} from '../errors.js';
import { FAULT_POINTS } from '../actuate/faults.js';
import type { FaultInjector } from '../actuate/types.js';
import type { FolderAction, FolderPlan, ObservedFolder, ObservedKind } from '../reconcile/home-folder.js';
import { segmentProblem } from './naming.js';

/** The seed writes `<root>/<name>_email.txt` beside the folder, where the quota script looks. */
export const EMAIL_FILE_SUFFIX = '_email.txt';
/** Readable like the seed's (Python's default 0666 under umask 022); the owner is the folder's. */
export const EMAIL_FILE_MODE = 0o644;
/** Leading dot: no User folder can be named like it, so it never collides with one. */
export const ARCHIVE_DIR = '.archive';
/** Archived folders hold user data of people who left: root only. */
export const ARCHIVE_DIR_MODE = 0o700;

const TEMP_PREFIX = '.swarmkeeper-';
const DEFAULT_CONCURRENCY = 64;
const MAX_ARCHIVE_SUFFIX = 1000;

/** O_NONBLOCK: a FIFO planted where a file is expected would otherwise hang the open forever. */
const OPEN_DIR_FLAGS =
  constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_DIRECTORY | constants.O_NONBLOCK;
const OPEN_READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const OPEN_TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export interface ResolveOptions {
  /**
   * The controller's own names (`.archive`, temp files): a dot followed by a safe segment, so the
   * two sets of names can never meet. Never pass a name that came from a resource.
   */
  readonly internal?: boolean;
}

/**
 * The one gate every filesystem path goes through: `<base>/<segment>`, or HomeUnsafePathError
 * when the segment breaks the safe-segment rule or would resolve anywhere but directly under base.
 */
export function resolveInside(base: string, segment: string, options: ResolveOptions = {}): string {
  const problem = options.internal
    ? segment.startsWith('.')
      ? segmentProblem(segment.slice(1))
      : 'internal names start with "."'
    : segmentProblem(segment);
  if (problem !== undefined) throw new HomeUnsafePathError(segment, problem);
  const resolvedBase = path.resolve(base);
  const resolved = path.resolve(resolvedBase, segment);
  // The rule above already excludes separators and dot segments; this catches whatever it missed.
  if (path.dirname(resolved) !== resolvedBase || path.relative(resolvedBase, resolved) !== segment)
    throw new HomeUnsafePathError(segment, 'does not resolve to an entry directly under the root');
  return resolved;
}

/** `20261126T071500Z`: sorts by time, has no `:` (awkward on NFS clients and in shells). */
export function archiveStamp(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string')
    return error.code;
  return undefined;
}

async function lstatIfExists(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function kindOf(entry: Stats | Dirent): ObservedKind {
  if (entry.isSymbolicLink()) return 'symlink';
  return entry.isDirectory() ? 'directory' : 'other';
}

/** Runs `work` over `items` with at most `limit` in flight: thousands of lstat calls at once exhaust file descriptors. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

interface EmailRead {
  readonly email: string | undefined;
  readonly emailConflict?: 'symlink' | 'other';
  /** The lstat the read started from, when it made one. */
  readonly stats?: Stats;
}

/**
 * What lstat says of a folder and of its e-mail file, as one comparable string. A chown, chmod,
 * write, rename over or delete-and-recreate moves the ctime, the inode or the size, so an equal
 * stamp means neither was touched since it was taken.
 */
export type FolderStamp = string;

function statStamp(stats: Stats | undefined): string {
  return stats === undefined
    ? '-'
    : `${stats.ino}:${stats.mode}:${stats.uid}:${stats.gid}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

/** The paths a stamp is taken of, resolved (and checked) once. */
export interface StampPaths {
  readonly folder: string;
  readonly email: string | undefined;
}

export interface FolderManagerOptions {
  /** The export as mounted inside the controller, e.g. /var/nfs. */
  readonly root: string;
  /** Filesystem calls in flight during observeAll; default 64. */
  readonly concurrency?: number;
  /** Tests: called at the named points of `archive` (FAULT_POINTS.homeArchive*). */
  readonly faultInjector?: FaultInjector | undefined;
}

export class FolderManager {
  readonly root: string;
  private readonly concurrency: number;
  private readonly fault: FaultInjector | undefined;

  constructor(options: FolderManagerOptions) {
    this.root = path.resolve(options.root);
    this.concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    this.fault = options.faultInjector;
  }

  folderPath(folder: string): string {
    return resolveInside(this.root, folder);
  }

  emailPath(folder: string): string {
    // The folder is checked on its own first: `..` + suffix would otherwise pass as a new name.
    resolveInside(this.root, folder);
    return resolveInside(this.root, `${folder}${EMAIL_FILE_SUFFIX}`);
  }

  /** What sits at `<root>/<folder>`, by lstat; undefined when nothing does. */
  async observe(folder: string): Promise<ObservedFolder | undefined> {
    return (await this.observeStamped(folder)).observed;
  }

  /**
   * `observe`, plus the stamp of the lstat calls it started from: if a later `stamp` is equal,
   * what was observed is still there, so it need not be read again.
   */
  async observeStamped(
    folder: string,
  ): Promise<{ observed: ObservedFolder | undefined; stamp: FolderStamp }> {
    const target = this.folderPath(folder);
    const stats = await lstatIfExists(target);
    if (stats === undefined) {
      // A missing root would make every user look missing, and the plan would create them all.
      await this.requireRoot();
      return { observed: undefined, stamp: `${statStamp(undefined)}|` };
    }
    const kind = kindOf(stats);
    const email = kind === 'directory' ? await this.readEmail(folder, undefined) : { email: undefined };
    return {
      observed: this.observed(kind, stats, email),
      stamp: `${statStamp(stats)}|${kind === 'directory' ? statStamp(email.stats) : ''}`,
    };
  }

  stampPaths(folder: string): StampPaths {
    let email: string | undefined;
    try {
      email = this.emailPath(folder);
    } catch (error) {
      if (!(error instanceof HomeUnsafePathError)) throw error;
    }
    return { folder: this.folderPath(folder), email };
  }

  /**
   * The stamp `observeStamped` would give now, with two synchronous lstat calls: a resync of ten
   * thousand folders takes a few tens of milliseconds this way, several times less CPU than the
   * same calls through the thread pool. The caller yields between chunks.
   */
  stamp(paths: StampPaths): FolderStamp {
    const stats = lstatSync(paths.folder, { throwIfNoEntry: false });
    if (stats === undefined) return `${statStamp(undefined)}|`;
    if (!stats.isDirectory()) return `${statStamp(stats)}|`;
    const email = paths.email === undefined ? undefined : lstatSync(paths.email, { throwIfNoEntry: false });
    return `${statStamp(stats)}|${statStamp(email)}`;
  }

  /**
   * Every entry under the root in one readdir (with file types) plus one lstat per entry, keyed
   * by name. Files sit beside folders (`x_email.txt` is an entry too, of kind `other`), so a
   * User named like another's e-mail file shows up as a conflict, not as a folder to create.
   * Dot-prefixed entries (the archive, temp files) are the controller's and are left out.
   */
  async observeAll(): Promise<Map<string, ObservedFolder>> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (error) {
      throw this.rootError(error);
    }
    const byName = new Map(entries.map((entry) => [entry.name, entry]));
    const candidates = entries.filter((entry) => segmentProblem(entry.name) === undefined);
    const found: (readonly [string, ObservedFolder] | undefined)[] = Array.from(
      { length: candidates.length },
      () => undefined,
    );
    await eachLimited(candidates, this.concurrency, async (entry, index) => {
      const stats = await lstatIfExists(resolveInside(this.root, entry.name));
      if (stats === undefined) return; // removed since the readdir
      const kind = kindOf(stats);
      const email =
        kind === 'directory'
          ? await this.readEmail(entry.name, byName.get(`${entry.name}${EMAIL_FILE_SUFFIX}`) ?? null)
          : { email: undefined };
      found[index] = [entry.name, this.observed(kind, stats, email)];
    });
    return new Map(found.filter((pair) => pair !== undefined));
  }

  /** Carries out a plan in order. Conflict actions are reports: nothing is done for them. */
  async apply(plan: FolderPlan): Promise<void> {
    for (const action of plan.actions) await this.applyAction(plan.folder, action);
  }

  /**
   * Moves `<root>/<folder>` (and its e-mail file) to `<root>/.archive/<folder>-<UTC stamp>`, with
   * `-1`, `-2`… when that name is taken. Rename only: nothing is copied or deleted. Returns the
   * archived folder's path.
   */
  async archive(folder: string, now: Date): Promise<string> {
    return this.moveToArchive(folder, await this.archiveName(folder, now));
  }

  /**
   * A name under `.archive/` free for both the folder and its e-mail file: `<folder>-<UTC stamp>`,
   * with `-1`, `-2`… when taken. Checks the folder is there to be archived.
   */
  async archiveName(folder: string, now: Date): Promise<string> {
    const source = this.folderPath(folder);
    const stats = await lstatIfExists(source);
    if (stats === undefined) throw new NotFoundError(`home folder ${source}`);
    if (!stats.isDirectory()) throw new HomeConflictError(source, describe(kindOf(stats)));
    const archiveDir = await this.ensureArchiveDir();
    const stamp = archiveStamp(now);
    for (let n = 0; n <= MAX_ARCHIVE_SUFFIX; n++) {
      const name = n === 0 ? `${folder}-${stamp}` : `${folder}-${stamp}-${n}`;
      // Both names are checked before anything moves, so a too-long name fails with nothing moved.
      const target = resolveInside(archiveDir, name);
      const emailTarget = resolveInside(archiveDir, `${name}${EMAIL_FILE_SUFFIX}`);
      // rename(2) silently replaces an empty directory or a file: look first.
      if ((await lstatIfExists(target)) === undefined && (await lstatIfExists(emailTarget)) === undefined)
        return name;
    }
    throw new HomeConflictError(
      path.join(archiveDir, `${folder}-${stamp}`),
      `${MAX_ARCHIVE_SUFFIX} archives with this stamp`,
    );
  }

  /**
   * Moves the folder, then its e-mail file, to `name` under `.archive/`. A step already done is
   * skipped, so an archive interrupted between the two (a `kill -9`) is finished by calling this
   * again with the same name. Returns the archived folder's path.
   */
  async moveToArchive(folder: string, name: string): Promise<string> {
    const source = this.folderPath(folder);
    const emailSource = this.emailPath(folder);
    const archiveDir = await this.ensureArchiveDir();
    const target = resolveInside(archiveDir, name);
    const emailTarget = resolveInside(archiveDir, `${name}${EMAIL_FILE_SUFFIX}`);
    const moved = await lstatIfExists(target);
    if (moved === undefined) {
      const stats = await lstatIfExists(source);
      if (stats === undefined) throw new NotFoundError(`home folder ${source}`);
      if (!stats.isDirectory()) throw new HomeConflictError(source, describe(kindOf(stats)));
      this.fault?.(FAULT_POINTS.homeArchiveBeforeRename);
      await rename(source, target);
    } else if (!moved.isDirectory()) {
      throw new HomeConflictError(target, describe(kindOf(moved)));
    }
    this.fault?.(FAULT_POINTS.homeArchiveAfterFolderRename);
    const emailStats = await lstatIfExists(emailSource);
    // Only a regular file is ours to move; anything else stays for a person to look at.
    if (emailStats?.isFile() === true && (await lstatIfExists(emailTarget)) === undefined)
      await rename(emailSource, emailTarget);
    return target;
  }

  private observed(kind: ObservedKind, stats: Stats, email: EmailRead): ObservedFolder {
    return {
      kind,
      uid: stats.uid,
      gid: stats.gid,
      mode: stats.mode & 0o7777,
      email: email.email,
      ...(email.emailConflict === undefined ? {} : { emailConflict: email.emailConflict }),
    };
  }

  /**
   * The e-mail file's content. `hint` is the readdir entry when the caller has one (null: known
   * absent), saving an lstat per user during a full resync.
   */
  private async readEmail(folder: string, hint: Dirent | null | undefined): Promise<EmailRead> {
    let file: string;
    try {
      file = this.emailPath(folder);
    } catch (error) {
      // A folder name near NAME_MAX has no room for the suffix: there can be no such file to read.
      if (error instanceof HomeUnsafePathError) return { email: undefined };
      throw error;
    }
    const stats = hint === undefined ? await lstatIfExists(file) : undefined;
    const entry = hint === undefined ? stats : (hint ?? undefined);
    if (entry === undefined) return { email: undefined };
    const stamped = stats === undefined ? {} : { stats };
    if (entry.isSymbolicLink()) return { email: undefined, emailConflict: 'symlink', ...stamped };
    if (!entry.isFile()) return { email: undefined, emailConflict: 'other', ...stamped };
    let handle: FileHandle;
    try {
      handle = await open(file, OPEN_READ_FLAGS);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return { email: undefined };
      // Swapped for a symlink since the lstat: O_NOFOLLOW refused it.
      if (code === 'ELOOP') return { email: undefined, emailConflict: 'symlink' };
      throw error;
    }
    try {
      if (!(await handle.stat()).isFile()) return { email: undefined, emailConflict: 'other', ...stamped };
      return { email: await handle.readFile({ encoding: 'utf8' }), ...stamped };
    } finally {
      await handle.close();
    }
  }

  private async applyAction(folder: string, action: FolderAction): Promise<void> {
    switch (action.type) {
      case 'create':
        await this.create(folder, action.mode);
        await this.withDirectory(folder, async (dir) => {
          await dir.chown(action.uid, action.gid);
          await dir.chmod(action.mode);
        });
        return;
      case 'chown':
        await this.withDirectory(folder, (dir) => dir.chown(action.uid, action.gid));
        return;
      case 'chmod':
        await this.withDirectory(folder, (dir) => dir.chmod(action.mode));
        return;
      case 'writeEmail':
        await this.writeEmail(folder, action.email, action.uid, action.gid);
        return;
      case 'conflict':
        return;
    }
  }

  private async create(folder: string, mode: number): Promise<void> {
    try {
      // Not recursive: the root must already be there (see HomeRootUnavailableError).
      await mkdir(this.folderPath(folder), { mode });
    } catch (error) {
      const code = errnoCode(error);
      // Made by someone else since the observation: withDirectory checks what it is.
      if (code === 'EEXIST') return;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw this.rootError(error);
      throw error;
    }
  }

  /**
   * Runs `work` on a descriptor of the folder itself. O_NOFOLLOW|O_DIRECTORY make the open fail
   * on a symlink or non-directory, and fchown/fchmod then act on exactly what was opened, so a
   * symlink swapped in after the observation is refused rather than followed (a path-based
   * chmod follows symlinks; Linux has no lchmod).
   */
  private async withDirectory(folder: string, work: (dir: FileHandle) => Promise<void>): Promise<void> {
    const target = this.folderPath(folder);
    let handle: FileHandle;
    try {
      handle = await open(target, OPEN_DIR_FLAGS);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ELOOP') throw new HomeConflictError(target, 'a symlink');
      if (code === 'ENOTDIR') throw new HomeConflictError(target, 'something that is not a directory');
      throw error;
    }
    try {
      await work(handle);
    } finally {
      await handle.close();
    }
  }

  /**
   * Write-temp-then-rename, so a reader (the quota script) sees the old or the new address, never
   * half of one. The temp file is created O_EXCL|O_NOFOLLOW in the root; rename replaces the
   * directory entry and never follows a symlink at the target, but one there is refused anyway.
   */
  private async writeEmail(folder: string, email: string, uid: number, gid: number): Promise<void> {
    const target = this.emailPath(folder);
    const existing = await lstatIfExists(target);
    if (existing?.isSymbolicLink() === true) throw new HomeConflictError(target, 'a symlink');
    if (existing !== undefined && !existing.isFile())
      throw new HomeConflictError(target, 'something that is not a regular file');

    const temp = resolveInside(this.root, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}.tmp`, {
      internal: true,
    });
    let handle: FileHandle;
    try {
      handle = await open(temp, OPEN_TEMP_FLAGS, EMAIL_FILE_MODE);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') throw this.rootError(error);
      throw error;
    }
    try {
      try {
        // The seed writes no newline; tools that compare the file to the login name rely on it.
        await handle.writeFile(email, { encoding: 'utf8' });
        await handle.chown(uid, gid);
        await handle.chmod(EMAIL_FILE_MODE);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  private async ensureArchiveDir(): Promise<string> {
    const dir = resolveInside(this.root, ARCHIVE_DIR, { internal: true });
    const stats = await lstatIfExists(dir);
    if (stats !== undefined) {
      // A symlink here would move user data wherever it points.
      if (!stats.isDirectory()) throw new HomeConflictError(dir, describe(kindOf(stats)));
      return dir;
    }
    try {
      await mkdir(dir, { mode: ARCHIVE_DIR_MODE });
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
    const handle = await open(dir, OPEN_DIR_FLAGS).catch((error: unknown) => {
      if (errnoCode(error) === 'ELOOP') throw new HomeConflictError(dir, 'a symlink');
      throw error;
    });
    try {
      await handle.chmod(ARCHIVE_DIR_MODE);
    } finally {
      await handle.close();
    }
    return dir;
  }

  /** Throws HomeRootUnavailableError unless the root is there and a directory. */
  async requireRoot(): Promise<void> {
    let stats: Stats;
    try {
      // stat, not lstat: a root configured as a symlink (e.g. to the mount point) is the admin's choice.
      stats = await stat(this.root);
    } catch (error) {
      throw this.rootError(error);
    }
    if (!stats.isDirectory()) throw new HomeRootUnavailableError(this.root, 'not a directory');
  }

  private rootError(error: unknown): Error {
    const code = errnoCode(error);
    if (code === 'ENOENT') return new HomeRootUnavailableError(this.root, 'does not exist', { cause: error });
    if (code === 'ENOTDIR')
      return new HomeRootUnavailableError(this.root, 'not a directory', { cause: error });
    return error instanceof Error ? error : new Error(String(error));
  }
}

function describe(kind: ObservedKind): string {
  if (kind === 'symlink') return 'a symlink';
  return kind === 'directory' ? 'a directory' : 'something that is not a directory';
}

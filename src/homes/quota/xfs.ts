/**
 * {@link QuotaDriver} on XFS project quotas, through the `xfs_quota` command on the NFS server.
 *
 * What it runs (always `execFile`, never a shell, with `LC_ALL=C` so the output parsed below is
 * not translated):
 *
 *   apply    xfs_quota -x -D <private projects file>
 *                     -c 'project -s 1001' -c 'limit -p bhard=1073741824 1001' ...  <mountPoint>
 *   release  xfs_quota -x -c 'limit -p bhard=0 1001' ...  <mountPoint>
 *   report   xfs_quota -x -c 'report -p -b -N -n' <mountPoint>
 *
 * Why this shape, from xfsprogs' sources:
 * - xfs_quota splits each `-c` string at spaces with no quoting (libxcmd breakline), so nothing
 *   that can contain a space may go into one. Commands carry only numeric IDs and byte counts.
 *   Numeric IDs also mean no name lookup: prid_from_string takes an all-digit argument as the ID.
 * - Paths go in a private projects file (`-D`, one `ID:path` line each, split at the first `:`
 *   only), so folder names with spaces or shell characters reach xfs_quota byte for byte.
 * - `project -s -p <path> <id>` cannot be batched: every `-p` path is added to the process's
 *   table as "any project", so each later `project -s` in the same process would re-tag the
 *   earlier folders with its own ID. `project -s <id>` against the private file touches only the
 *   lines with that ID, so one process can set up many folders.
 * - Each entry is `project -s` plus `limit`, kept together in one process; processes hold at most
 *   `maxCommandsPerCall` commands, so 1,000 users are one process at the default 2,000.
 * - `limit` values are bytes; xfs_quota turns them into 512-byte blocks and a value under one
 *   block into "no limit". Limits are rounded up to whole KiB, the unit `report` prints, so a
 *   tiny limit never becomes none and report() reads back what apply() sent.
 * - A `project -s` whose folder is missing prints "Processed 0 ..." and still exits 0; apply()
 *   reads those lines and fails with SK_QUOTA_COMMAND rather than report success.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, QuotaCommandError, QuotaEntryError } from '../../errors.js';
import type { QuotaDriver, QuotaEntry, QuotaTarget, QuotaUsage } from './driver.js';
import {
  projidNames,
  readIfExists,
  rewriteFile,
  updateProjectsText,
  updateProjidText,
  type ProjectFilePaths,
} from './project-files.js';
import { XfsReportParser, type XfsReportRow } from './xfs-report.js';

const execFileAsync = promisify(execFile);

export interface XfsQuotaDriverOptions {
  /** The export root on an XFS filesystem mounted with `prjquota`, e.g. /var/nfs. */
  readonly mountPoint: string;
  /** The command, looked up on PATH unless absolute; default `xfs_quota`. */
  readonly binary?: string;
  /** `-c` commands per process; default 2,000. An entry's two commands always share a process. */
  readonly maxCommandsPerCall?: number;
  /** Keep these files in step with what apply/release set; off unless given. */
  readonly manageFiles?: ProjectFilePaths | undefined;
  /** Added to the command's environment (on top of this process's). */
  readonly env?: Readonly<Record<string, string>>;
  /** Kill a run after this long; default 10 minutes (`project -s` walks whole folder trees). */
  readonly timeoutMs?: number;
  /** Where the private projects file is written for one run; default the OS temp dir. */
  readonly tempDir?: string;
  /**
   * Names for project IDs this process did not apply itself (after a restart), e.g. from the
   * ProjectIdAllocator. IDs with no name anywhere are reported as `#<id>`.
   */
  readonly projectNames?: () => Promise<ReadonlyMap<number, string>>;
}

export const DEFAULT_XFS_QUOTA_BINARY = 'xfs_quota';
/**
 * One batch of the QuotaBatcher (1,000 users, two commands each) in one process: at 10,000
 * users, fewer and larger runs cut first convergence by the cost of starting xfs_quota ~90 more
 * times. The arguments stay near 80 KB, far under ARG_MAX.
 */
export const DEFAULT_MAX_COMMANDS_PER_CALL = 2000;
const DEFAULT_TIMEOUT_MS = 10 * 60_000;
/** A report line is under 80 bytes: this is room for about a million projects. */
const MAX_OUTPUT_BYTES = 128 * 1024 * 1024;
const MAX_STDERR_CHARS = 2_000;
const MAX_PROJECT_ID = 0xffff_fffe;
// C0/C1 controls, including line breaks, would split an `ID:path` or `name:ID` line in two.
const CONTROL = /\p{Cc}/u;
const PROCESSED = /^Processed (\d+) .*paths for project (\d+)\b/;

/** One planned `xfs_quota` run. */
interface XfsQuotaCall {
  readonly operation: string;
  readonly args: readonly string[];
  /** Contents of the private projects file passed with `-D`, if any. */
  readonly projectsFile?: string;
}

export class XfsQuotaDriver implements QuotaDriver {
  private readonly mountPoint: string;
  private readonly binary: string;
  private readonly maxCommands: number;
  private readonly files: ProjectFilePaths | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly timeoutMs: number;
  private readonly tempDir: string;
  private readonly projectNames: (() => Promise<ReadonlyMap<number, string>>) | undefined;
  /** Names of the IDs this driver applied or released, the freshest source for report(). */
  private readonly names = new Map<number, string>();
  private readonly reportParser = new XfsReportParser();
  private readonly usageOfRow = new WeakMap<XfsReportRow, QuotaUsage>();
  /** apply/release run one at a time: they rewrite the same files and retag the same trees. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: XfsQuotaDriverOptions) {
    this.mountPoint = checkMountPoint(options.mountPoint);
    this.binary = options.binary ?? DEFAULT_XFS_QUOTA_BINARY;
    this.maxCommands = options.maxCommandsPerCall ?? DEFAULT_MAX_COMMANDS_PER_CALL;
    if (!Number.isSafeInteger(this.maxCommands) || this.maxCommands < 2) {
      throw new ConfigError(`maxCommandsPerCall must be an integer of at least 2, not ${this.maxCommands}`);
    }
    this.files = options.manageFiles;
    this.env = { ...process.env, ...options.env, LC_ALL: 'C', LANG: 'C' };
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.tempDir = options.tempDir ?? tmpdir();
    this.projectNames = options.projectNames;
  }

  /** The runs `apply(entries)` makes; throws on any entry it refuses, before anything runs. */
  private planApply(entries: readonly QuotaEntry[]): XfsQuotaCall[] {
    const checked = entries.map((e) => this.checkEntry(e));
    checkUnique(checked);
    const perCall = Math.floor(this.maxCommands / 2);
    const calls: XfsQuotaCall[] = [];
    const total = Math.ceil(checked.length / perCall);
    for (let start = 0; start < checked.length; start += perCall) {
      const batch = checked.slice(start, start + perCall);
      const commands = batch.flatMap((e) => [
        '-c',
        `project -s ${e.id}`,
        '-c',
        `limit -p bhard=${roundUpToKib(e.hardLimitBytes)} ${e.id}`,
      ]);
      calls.push({
        operation: `xfs_quota: set up ${batch.length} project(s) (run ${calls.length + 1} of ${total})`,
        args: ['-x', '-D', PROJECTS_FILE_PLACEHOLDER, ...commands, this.mountPoint],
        projectsFile: batch.map((e) => `${e.id}:${e.path}\n`).join(''),
      });
    }
    return calls;
  }

  /** The runs `release(entries)` makes; throws on any entry it refuses, before anything runs. */
  private planRelease(entries: readonly QuotaTarget[]): XfsQuotaCall[] {
    const checked = entries.map((e) => this.checkTarget(e));
    const calls: XfsQuotaCall[] = [];
    const total = Math.ceil(checked.length / this.maxCommands);
    for (let start = 0; start < checked.length; start += this.maxCommands) {
      const batch = checked.slice(start, start + this.maxCommands);
      calls.push({
        operation: `xfs_quota: lift the limit of ${batch.length} project(s) (run ${calls.length + 1} of ${total})`,
        args: ['-x', ...batch.flatMap((e) => ['-c', `limit -p bhard=0 ${e.id}`]), this.mountPoint],
      });
    }
    return calls;
  }

  async apply(entries: readonly QuotaEntry[]): Promise<void> {
    const calls = this.planApply(entries);
    if (calls.length === 0) return;
    await this.exclusive(async () => {
      if (this.files) await this.writeFiles(entries, 'set');
      const unprocessed: number[] = [];
      for (const call of calls) {
        const { stdout } = await this.runWithProjectsFile(call);
        unprocessed.push(...idsProcessedZeroTimes(stdout));
      }
      for (const e of entries) this.names.set(e.id, e.project);
      if (unprocessed.length > 0) {
        throw new QuotaCommandError(
          'xfs_quota: set up projects',
          { exitCode: 0 },
          `no folder was set up for project ID(s) ${unprocessed.slice(0, 20).join(', ')}` +
            `${unprocessed.length > 20 ? ` and ${unprocessed.length - 20} more` : ''}` +
            ' (is the folder missing, or not on the filesystem mounted at the export root?)',
        );
      }
    });
  }

  async release(entries: readonly QuotaTarget[]): Promise<void> {
    const calls = this.planRelease(entries);
    if (calls.length === 0) return;
    await this.exclusive(async () => {
      for (const call of calls) await this.run(call.operation, call.args);
      for (const e of entries) this.names.set(e.id, e.project);
      if (this.files) await this.writeFiles(entries, 'remove');
    });
  }

  async report(): Promise<Map<string, QuotaUsage>> {
    const { stdout } = await this.run('xfs_quota: report project quotas', [
      '-x',
      '-c',
      'report -p -b -N -n',
      this.mountPoint,
    ]);
    const rows = this.reportParser.parse(stdout);
    const names = await this.knownNames();
    const usage = new Map<string, QuotaUsage>();
    for (const [key, row] of rows) {
      // The parser hands back an unchanged line's row object, so its usage object is kept too.
      let figures = this.usageOfRow.get(row);
      if (figures === undefined) {
        figures = { usedBytes: row.usedBytes, hardLimitBytes: row.hardLimitBytes };
        this.usageOfRow.set(row, figures);
      }
      usage.set(typeof key === 'number' ? (names.get(key) ?? `#${key}`) : key, figures);
    }
    return usage;
  }

  private async knownNames(): Promise<ReadonlyMap<number, string>> {
    // The usual case, and no copy of ten thousand names per resync.
    if (!this.files && !this.projectNames) return this.names;
    const names = new Map<number, string>();
    if (this.files)
      for (const [id, name] of projidNames(await readIfExists(this.files.projid))) names.set(id, name);
    if (this.projectNames) for (const [id, name] of await this.projectNames()) names.set(id, name);
    for (const [id, name] of this.names) names.set(id, name);
    return names;
  }

  private async writeFiles(entries: readonly QuotaTarget[], mode: 'set' | 'remove'): Promise<void> {
    const files = this.files;
    if (!files) return;
    await rewriteFile(files.projects, (text) => updateProjectsText(text, entries, mode));
    await rewriteFile(files.projid, (text) => updateProjidText(text, entries, mode));
  }

  private async runWithProjectsFile(call: XfsQuotaCall): Promise<{ stdout: string; stderr: string }> {
    // A directory of its own, created 0700 by mkdtemp, so no other user can swap the file.
    const dir = await mkdtemp(path.join(this.tempDir, 'swarmkeeper-xfs-'));
    try {
      const file = path.join(dir, 'projects');
      await writeFile(file, call.projectsFile ?? '', { mode: 0o600 });
      const args = call.args.map((a) => (a === PROJECTS_FILE_PLACEHOLDER ? file : a));
      return await this.run(call.operation, args);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async run(operation: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await execFileAsync(this.binary, [...args], {
        env: this.env,
        encoding: 'utf8',
        maxBuffer: MAX_OUTPUT_BYTES,
        timeout: this.timeoutMs,
        windowsHide: true,
      });
      return { stdout, stderr };
    } catch (error: unknown) {
      throw commandError(operation, this.binary, error);
    }
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private checkTarget(entry: QuotaTarget): QuotaTarget {
    const { project, id } = entry;
    if (project.length === 0) throw new QuotaEntryError(project, 'project name must not be empty');
    if (CONTROL.test(project))
      throw new QuotaEntryError(project, 'project name must not contain control characters');
    // /etc/projid is `name:ID`, and a line starting with `#` is a comment there.
    if (project.includes(':')) throw new QuotaEntryError(project, 'project name must not contain ":"');
    if (project.startsWith('#')) throw new QuotaEntryError(project, 'project name must not start with "#"');
    if (!Number.isSafeInteger(id) || id < 1 || id > MAX_PROJECT_ID) {
      throw new QuotaEntryError(
        project,
        `project ID must be an integer from 1 to ${MAX_PROJECT_ID}, not ${id}`,
      );
    }
    const problem = pathProblem(entry.path, this.mountPoint);
    if (problem) throw new QuotaEntryError(project, `path ${JSON.stringify(entry.path)} ${problem}`);
    return entry;
  }

  private checkEntry(entry: QuotaEntry): QuotaEntry {
    this.checkTarget(entry);
    const limit = entry.hardLimitBytes;
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new QuotaEntryError(
        entry.project,
        `hardLimitBytes must be a whole number of bytes >= 0, not ${limit}`,
      );
    }
    return entry;
  }
}

/** Stands in for the private projects file's path in a planned call until the file exists. */
const PROJECTS_FILE_PLACEHOLDER = '\0projects-file';

function checkMountPoint(mountPoint: string): string {
  if (!path.posix.isAbsolute(mountPoint) || CONTROL.test(mountPoint)) {
    throw new ConfigError(
      `the quota export root must be an absolute path, not ${JSON.stringify(mountPoint)}`,
    );
  }
  const normalised = path.posix.normalize(mountPoint);
  return normalised.length > 1 ? normalised.replace(/\/+$/, '') : normalised;
}

/**
 * Why `folder` may not be set up as a project tree, or undefined. `project -s` walks and retags
 * the whole tree below the path, so a path at or above the export root (or outside it) would
 * charge every user's files to one project.
 */
function pathProblem(folder: string, mountPoint: string): string | undefined {
  if (!path.posix.isAbsolute(folder)) return 'must be absolute';
  if (CONTROL.test(folder)) return 'must not contain control characters';
  if (path.posix.normalize(folder) !== folder || folder.endsWith('/'))
    return 'must be normalised (no ., .., //)';
  const root = mountPoint === '/' ? '/' : `${mountPoint}/`;
  if (!folder.startsWith(root) || folder.length === root.length) return `must be inside ${mountPoint}`;
  return undefined;
}

/** One folder per ID and one ID per folder: otherwise the last `project -s` silently wins. */
function checkUnique(entries: readonly QuotaEntry[]): void {
  const byId = new Map<number, QuotaEntry>();
  const byPath = new Map<string, number>();
  for (const entry of entries) {
    const sameId = byId.get(entry.id);
    if (sameId && (sameId.path !== entry.path || sameId.project !== entry.project)) {
      throw new QuotaEntryError(
        entry.project,
        `project ID ${entry.id} is also given to ${JSON.stringify(sameId.project)}`,
      );
    }
    const sameFolder = byPath.get(entry.path);
    if (sameFolder !== undefined && sameFolder !== entry.id) {
      throw new QuotaEntryError(
        entry.project,
        `folder ${JSON.stringify(entry.path)} is also given ID ${sameFolder}`,
      );
    }
    byId.set(entry.id, entry);
    byPath.set(entry.path, entry.id);
  }
}

function roundUpToKib(bytes: number): number {
  return Math.ceil(bytes / 1024) * 1024;
}

function idsProcessedZeroTimes(stdout: string): number[] {
  const ids: number[] = [];
  for (const line of stdout.split('\n')) {
    const match = PROCESSED.exec(line);
    if (match && match[1] === '0') ids.push(Number(match[2]));
  }
  return ids;
}

interface ExecFailure {
  code?: unknown;
  signal?: unknown;
  killed?: unknown;
  stderr?: unknown;
}

function commandError(operation: string, binary: string, error: unknown): QuotaCommandError {
  const failure = (typeof error === 'object' && error !== null ? error : {}) as ExecFailure;
  const stderr = boundStderr(typeof failure.stderr === 'string' ? failure.stderr : '');
  const exitCode = typeof failure.code === 'number' ? failure.code : undefined;
  const signal = typeof failure.signal === 'string' ? failure.signal : undefined;
  let message: string;
  if (failure.code === 'ENOENT') message = `${binary} not found (is xfsprogs installed and on PATH?)`;
  else if (failure.code === 'EACCES') message = `${binary} is not executable`;
  else if (failure.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') message = 'output too large';
  else if (signal !== undefined)
    message = `killed by ${signal}${failure.killed === true ? ' (timed out)' : ''}`;
  else if (exitCode !== undefined) message = `exited with status ${exitCode}`;
  else message = error instanceof Error ? error.message : String(error);
  if (stderr) message += `: ${stderr}`;
  return new QuotaCommandError(operation, { exitCode, signal, stderr }, message, { cause: error });
}

function boundStderr(stderr: string): string {
  const trimmed = stderr.trim();
  if (trimmed.length <= MAX_STDERR_CHARS) return trimmed;
  return `${trimmed.slice(0, MAX_STDERR_CHARS)}… (${trimmed.length - MAX_STDERR_CHARS} more characters)`;
}

/**
 * /etc/projects (`ID:path`) and /etc/projid (`name:ID`), the files xfs_quota reads to name
 * projects and find their trees. Kept only so administrators' own `xfs_quota` commands see the
 * same names as swarmkeeper: the driver never depends on them. The seed appended to both on every
 * folder creation, which left duplicates behind; here each entry has exactly one line, replaced
 * in place, and every line about other projects (and comments) is left as it was.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

export interface ProjectFilePaths {
  /** `ID:path` lines; /etc/projects on a real server. */
  readonly projects: string;
  /** `name:ID` lines; /etc/projid on a real server. */
  readonly projid: string;
}

export const DEFAULT_PROJECT_FILES: ProjectFilePaths = { projects: '/etc/projects', projid: '/etc/projid' };

export interface ProjectFileEntry {
  readonly project: string;
  readonly id: number;
  readonly path: string;
}

interface ParsedLine {
  readonly id: number | undefined;
  /** The path in /etc/projects, the name in /etc/projid. */
  readonly key: string;
}

/** libfrog's getprpathent: the ID is everything before the first `:`, the path everything after. */
function parseProjectsLine(line: string): ParsedLine | undefined {
  if (line.startsWith('#')) return undefined;
  const colon = line.indexOf(':');
  if (colon < 0) return undefined;
  return { id: parseId(line.slice(0, colon)), key: line.slice(colon + 1) };
}

/** libfrog's getprent: the name is everything before the first `:`, the ID up to the next one. */
function parseProjidLine(line: string): ParsedLine | undefined {
  if (line.startsWith('#')) return undefined;
  const colon = line.indexOf(':');
  if (colon < 0) return undefined;
  return { id: parseId(line.slice(colon + 1).split(':')[0] ?? ''), key: line.slice(0, colon) };
}

function parseId(text: string): number | undefined {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : undefined;
}

/**
 * Replaces every line about an owned ID or key: the first one in place with the desired line for
 * its ID, the rest dropped; desired lines with no old line are appended. Other lines stay as they are.
 */
function mergeLines(
  text: string,
  parse: (line: string) => ParsedLine | undefined,
  ownedIds: ReadonlySet<number>,
  ownedKeys: ReadonlySet<string>,
  desired: ReadonlyMap<number, string>,
): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const emitted = new Set<number>();
  const out: string[] = [];
  for (const line of lines) {
    const parsed = parse(line);
    const owned =
      parsed !== undefined &&
      ((parsed.id !== undefined && ownedIds.has(parsed.id)) || ownedKeys.has(parsed.key));
    if (!owned) {
      out.push(line);
      continue;
    }
    const id = parsed.id;
    if (id !== undefined && !emitted.has(id)) {
      const replacement = desired.get(id);
      if (replacement !== undefined) {
        out.push(replacement);
        emitted.add(id);
      }
    }
  }
  for (const [id, line] of desired) if (!emitted.has(id)) out.push(line);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** /etc/projects after `entries` are set (`set`) or forgotten (`remove`). */
export function updateProjectsText(
  text: string,
  entries: readonly ProjectFileEntry[],
  mode: 'set' | 'remove',
): string {
  const desired = new Map<number, string>();
  if (mode === 'set') for (const e of entries) desired.set(e.id, `${e.id}:${e.path}`);
  return mergeLines(
    text,
    parseProjectsLine,
    new Set(entries.map((e) => e.id)),
    new Set(entries.map((e) => e.path)),
    desired,
  );
}

/** /etc/projid after `entries` are set (`set`) or forgotten (`remove`). */
export function updateProjidText(
  text: string,
  entries: readonly ProjectFileEntry[],
  mode: 'set' | 'remove',
): string {
  const desired = new Map<number, string>();
  if (mode === 'set') for (const e of entries) desired.set(e.id, `${e.project}:${e.id}`);
  return mergeLines(
    text,
    parseProjidLine,
    new Set(entries.map((e) => e.id)),
    new Set(entries.map((e) => e.project)),
    desired,
  );
}

/** ID → name from /etc/projid text; the first line for an ID wins, as in xfs_quota's getprprid. */
export function projidNames(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    const parsed = parseProjidLine(line);
    if (parsed?.id !== undefined && !names.has(parsed.id)) names.set(parsed.id, parsed.key);
  }
  return names;
}

export async function readIfExists(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

/**
 * Rewrites `file` through `transform` so a reader (xfs_quota, an administrator) sees the old file
 * or the new one, never half of one: a temporary file beside it, flushed, then renamed over it.
 * Unchanged content is not written. Returns whether the file changed.
 */
export async function rewriteFile(file: string, transform: (text: string) => string): Promise<boolean> {
  const before = await readIfExists(file);
  const after = transform(before);
  if (after === before) return false;
  const mode = await stat(file).then(
    (s) => s.mode & 0o7777,
    () => 0o644,
  );
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      // The umask may have narrowed `mode`; the file keeps exactly the mode it had.
      await handle.chmod(mode);
      await handle.writeFile(after, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error: unknown) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  return true;
}

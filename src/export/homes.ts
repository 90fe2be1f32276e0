/**
 * The user folders already on an NFS export → one HomeFolders and one User per folder, for adopting
 * the seed's layout: `<root>/<folder>`, `<root>/<folder>_email.txt` (the e-mail, no newline) and,
 * until incrond set the quota, an empty `<root>/<folder>_QUOTA_NOT_SET` marker.
 *
 * Usernames come from the folder name for `plain` and `escaped` naming. `md5` cannot be inverted:
 * the seed named users by their e-mail, so a folder whose name is md5(e-mail file content) is that
 * user; any other md5 folder is skipped with a warning.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { FolderManager } from '../homes/folders.js';
import { escapedFolder, folderName, md5Folder, type FolderNaming } from '../homes/naming.js';
import type { QuotaDriver, QuotaUsage } from '../homes/quota/driver.js';
import { projidNames, readIfExists } from '../homes/quota/project-files.js';
import {
  DEFAULT_HOME_MODE,
  DEFAULT_HOME_OWNER,
  formatMode,
  type ObservedFolder,
} from '../reconcile/home-folder.js';
import { ANNOTATIONS, API_VERSION } from '../resources/metadata.js';
import { validateResource, type Resource } from '../resources/resource.js';
import { formatBytes } from './units.js';

/** The seed's marker for a folder whose quota incrond has not set yet. */
export const QUOTA_NOT_SET_SUFFIX = '_QUOTA_NOT_SET';

export interface HomesExportOptions {
  /** The export root as this process sees it; becomes `spec.root`. */
  readonly root: string;
  readonly naming: FolderNaming;
  /** The HomeFolders resource name. */
  readonly name: string;
  /** `xfs`: read limits back with `quota` (XfsQuotaDriver); `none`: no quota in the manifests. */
  readonly quota: 'none' | 'xfs';
  /** Makes the quota driver, given the names of project IDs (from the projects and projid files). */
  readonly quotaDriver?: (projectNames: () => Promise<ReadonlyMap<number, string>>) => QuotaDriver;
  /** `ID:path` lines naming the folder of each project ID (the seed's /etc/projects). */
  readonly projectsFile?: string;
  /** `name:ID` lines (the seed's /etc/projid). */
  readonly projidFile?: string;
}

export interface HomesExport {
  readonly resources: Resource[];
  readonly warnings: string[];
}

interface FoundUser {
  readonly folder: string;
  readonly username: string;
  readonly observed: ObservedFolder;
  readonly email: string | undefined;
  readonly quotaPending: boolean;
}

export async function exportHomes(options: HomesExportOptions): Promise<HomesExport> {
  const root = path.resolve(options.root);
  const manager = new FolderManager({ root });
  const entries = await manager.observeAll();
  const warnings: string[] = [];
  const users: FoundUser[] = [];

  for (const [folder, observed] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (observed.kind === 'other') continue; // e-mail files, quota markers and other files
    if (observed.kind === 'symlink') {
      warnings.push(`home folder ${folder}: a symlink, never followed; skipped`);
      continue;
    }
    const email = observed.email?.trim();
    const username = usernameOf(folder, options.naming, email);
    if (typeof username !== 'string') {
      warnings.push(`home folder ${folder}: ${username.reason}; skipped`);
      continue;
    }
    const quotaPending = await exists(path.join(root, `${folder}${QUOTA_NOT_SET_SUFFIX}`));
    users.push({ folder, username, observed, email: email === '' ? undefined : email, quotaPending });
  }

  // Owner and mode are one setting for the whole export: take what most folders have, so adopting
  // changes as few folders as possible, and name the others, which the controller will change.
  const owner = mostCommon(users.map((u) => `${u.observed.uid}:${u.observed.gid}`)) ?? defaultOwner();
  const mode = mostCommon(users.map((u) => formatMode(u.observed.mode))) ?? DEFAULT_HOME_MODE;
  for (const user of users) {
    const own = `${user.observed.uid}:${user.observed.gid}`;
    const itsMode = formatMode(user.observed.mode);
    if (own !== owner || itsMode !== mode)
      warnings.push(
        `home folder ${user.folder} is ${own} ${itsMode}, unlike most (${owner} ${mode}): the controller will change it`,
      );
  }
  const emailFile = users.some((u) => u.email !== undefined);

  let usage = new Map<string, QuotaUsage>();
  if (options.quota === 'xfs' && options.quotaDriver) {
    const names = await projectNames(root, options, warnings);
    usage = await options.quotaDriver(() => Promise.resolve(names)).report();
  }
  const limits = users.filter((u) => !u.quotaPending).map((u) => usage.get(u.folder)?.hardLimitBytes);
  const known = limits.filter((l): l is number => l !== undefined);
  const defaultLimit = options.quota === 'xfs' ? Number(mostCommon(known.map(String)) ?? 0) : 0;
  for (const user of users) {
    if (options.quota === 'xfs' && user.quotaPending)
      warnings.push(
        `home folder ${user.folder} has no quota yet (${user.folder}${QUOTA_NOT_SET_SUFFIX}): the controller will set the default`,
      );
  }

  const [uid = DEFAULT_HOME_OWNER.uid, gid = DEFAULT_HOME_OWNER.gid] = owner.split(':').map(Number);
  const homesSpec = {
    root,
    naming: options.naming,
    ...(owner !== defaultOwner() && { owner: { uid, gid } }),
    ...(mode !== DEFAULT_HOME_MODE && { mode }),
    ...(emailFile && { emailFile: true }),
    ...(options.quota === 'xfs' && {
      quota: { driver: 'xfs', ...(defaultLimit > 0 && { default: formatBytes(defaultLimit) }) },
    }),
  };
  const resources: Resource[] = [];
  const homes = manifest('HomeFolders', options.name, homesSpec, warnings);
  if (homes) resources.push(homes);
  for (const user of users) {
    const limit = user.quotaPending ? undefined : usage.get(user.folder)?.hardLimitBytes;
    const spec = {
      ...(user.email !== undefined && { email: user.email }),
      ...(options.quota === 'xfs' &&
        limit !== undefined &&
        limit !== defaultLimit && { quota: formatBytes(limit) }),
    };
    let resource = manifest('User', user.username, spec, []);
    if (resource === undefined && user.email !== undefined) {
      // The seed wrote the username, which is an e-mail only with Google auth.
      const { email: _email, ...withoutEmail } = spec;
      resource = manifest('User', user.username, withoutEmail, warnings);
      if (resource)
        warnings.push(
          `User ${user.username}: ${user.folder}_email.txt holds no e-mail address; left out of the manifest`,
        );
    } else if (resource === undefined) manifest('User', user.username, spec, warnings);
    if (resource) resources.push(resource);
  }
  return { resources, warnings };
}

/** The username a folder stands for, or why it cannot be told. */
export function usernameOf(
  folder: string,
  naming: FolderNaming,
  email: string | undefined,
): string | { reason: string } {
  let username: string | undefined;
  switch (naming) {
    case 'plain':
      username = folder;
      break;
    case 'escaped':
      username = unescapeFolder(folder);
      if (username === undefined) return { reason: 'not a name dockerspawner escaping could have made' };
      break;
    case 'md5':
      // md5 cannot be inverted; the seed's users were named by their e-mail, which it wrote beside the folder.
      if (email === undefined || email === '')
        return { reason: 'md5 naming, and no e-mail file to take the username from' };
      if (md5Folder(email) !== folder)
        return { reason: `md5 naming, and md5 of its e-mail (${email}) is not the folder name` };
      username = email;
      break;
  }
  const check = folderName(username, naming);
  if (!check.ok || check.folder !== folder)
    return { reason: `username ${username} would not give this folder` };
  return username;
}

/** dockerspawner's escaping undone: `-` plus two hex digits is one byte. */
export function unescapeFolder(folder: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < folder.length; i += 1) {
    const c = folder.charAt(i);
    if (c === '-') {
      const hex = folder.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (/^[a-z0-9]$/.test(c)) bytes.push(c.charCodeAt(0));
    else return undefined;
  }
  try {
    const name = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
    return escapedFolder(name) === folder ? name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Project ID → folder name, from the projects file (`ID:path`, the path directly under the root)
 * and the projid file (`name:ID`, the seed named projects after folders). An ID claimed by two
 * folders (the seed's ID arithmetic failed that way) names neither: its limit cannot be placed.
 */
async function projectNames(
  root: string,
  options: HomesExportOptions,
  warnings: string[],
): Promise<Map<number, string>> {
  const candidates = new Map<number, Set<string>>();
  const claim = (id: number, folder: string): void => {
    const set = candidates.get(id) ?? new Set<string>();
    set.add(folder);
    candidates.set(id, set);
  };
  if (options.projectsFile !== undefined) {
    for (const line of (await readIfExists(options.projectsFile)).split('\n')) {
      if (line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const id = line.slice(0, colon).trim();
      const where = path.resolve(line.slice(colon + 1));
      if (colon > 0 && /^\d+$/.test(id) && path.dirname(where) === root)
        claim(Number(id), path.basename(where));
    }
  }
  if (options.projidFile !== undefined) {
    for (const [id, name] of projidNames(await readIfExists(options.projidFile))) claim(id, name);
  }
  const names = new Map<number, string>();
  for (const [id, folders] of candidates) {
    const [only, ...others] = [...folders];
    if (only !== undefined && others.length === 0) names.set(id, only);
    else
      warnings.push(`XFS project ID ${id} belongs to ${[...folders].join(', ')}: its limit is not read back`);
  }
  return names;
}

function manifest(
  kind: 'HomeFolders' | 'User',
  name: string,
  spec: object,
  warnings: string[],
): Resource | undefined {
  const result = validateResource({
    apiVersion: API_VERSION,
    kind,
    metadata: { name, annotations: { [ANNOTATIONS.adopt]: 'true' } },
    spec,
  });
  if (result.ok) return result.resource;
  warnings.push(
    `${kind} ${name}: ${result.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}; skipped`,
  );
  return undefined;
}

function defaultOwner(): string {
  return `${DEFAULT_HOME_OWNER.uid}:${DEFAULT_HOME_OWNER.gid}`;
}

/** The most frequent value; ties go to the one seen first. */
function mostCommon(values: readonly string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best: string | undefined;
  for (const [value, count] of counts)
    if (best === undefined || count > (counts.get(best) ?? 0)) best = value;
  return best;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

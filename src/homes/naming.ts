/**
 * How a User name becomes the name of its folder under a HomeFolders root, and of the per-user
 * volume. The three schemes must match, byte for byte, what the spawner in front of the
 * deployment computes, or users would be mounted an empty folder next to their real one.
 */
import { createHash } from 'node:crypto';
import { USERNAME_PLACEHOLDER } from '../resources/kinds/homefolders.js';

export type FolderNaming = 'plain' | 'md5' | 'escaped';

/** README documents `plain` as the default of `spec.naming`. */
export const DEFAULT_FOLDER_NAMING: FolderNaming = 'plain';

export type FolderNameResult =
  { readonly ok: true; readonly folder: string } | { readonly ok: false; readonly reason: string };

/** Linux NAME_MAX: a longer name fails with ENAMETOOLONG only after we have decided to create it. */
export const MAX_SEGMENT_BYTES = 255;

const utf8 = new TextEncoder();

// With the `u` flag \p{Cs} matches only unpaired surrogates, which Node would write as U+FFFD:
// two different names would then share one folder.
const LONE_SURROGATE = /\p{Cs}/u;
// C0, DEL and C1 controls: they make names that cannot be typed, listed or logged safely.
const CONTROL = /\p{Cc}/u;

/**
 * Why `segment` cannot be used as one directory entry directly under a root, or `undefined` when
 * it can. The single rule behind `plain` naming and behind every path the folder manager builds.
 */
export function segmentProblem(segment: string): string | undefined {
  if (segment.length === 0) return 'must not be empty';
  if (segment === '.' || segment === '..') return 'must not be "." or ".."';
  if (segment.startsWith('.')) return 'must not start with "."';
  if (segment.includes('/')) return 'must not contain "/"';
  if (segment.includes('\0')) return 'must not contain NUL';
  if (CONTROL.test(segment)) return 'must not contain control characters';
  if (LONE_SURROGATE.test(segment)) return 'must be well-formed Unicode';
  if (utf8.encode(segment).length > MAX_SEGMENT_BYTES)
    return `must be at most ${MAX_SEGMENT_BYTES} bytes in UTF-8`;
  return undefined;
}

/** Lowercase hex MD5 of the UTF-8 name: the seed's SwarmSpawner, `hashlib.md5(name.encode('utf-8')).hexdigest()`. */
export function md5Folder(username: string): string {
  return createHash('md5').update(username, 'utf8').digest('hex');
}

const ESCAPED_SAFE = /^[a-z0-9]$/;

/**
 * dockerspawner's `DockerSpawner._escape`: `escapism.escape(name, safe=ascii_lowercase+digits,
 * escape_char='-').lower()`. Upper-case letters are outside the safe set, so they are escaped
 * before the final lowercasing (`A` → `-41`), which keeps `Alice` and `alice` apart.
 */
export function escapedFolder(username: string): string {
  let out = '';
  // for…of walks code points, as Python iterates a str; a UTF-16 loop would split astral characters.
  for (const char of username) {
    if (ESCAPED_SAFE.test(char)) {
      out += char;
      continue;
    }
    // escapism formats each byte with '%X': no zero padding. Only bytes below 0x10 (C0 controls,
    // which folderName refuses) would come out as one digit.
    for (const byte of utf8.encode(char)) out += `-${byte.toString(16).toUpperCase()}`;
  }
  return out.toLowerCase();
}

/** The folder (and `{username}` substitute) for a User under a naming scheme, or why there is none. */
export function folderName(username: string, naming: FolderNaming): FolderNameResult {
  // The hashing schemes accept any name, but a name the plain rule refuses for control characters
  // or broken Unicode is not one a person chose; hashing it would hide the mistake.
  if (username.length === 0) return { ok: false, reason: 'username must not be empty' };
  if (CONTROL.test(username) || username.includes('\0'))
    return { ok: false, reason: 'username must not contain control characters' };
  if (LONE_SURROGATE.test(username)) return { ok: false, reason: 'username must be well-formed Unicode' };

  let folder: string;
  switch (naming) {
    case 'plain':
      folder = username;
      break;
    case 'md5':
      folder = md5Folder(username);
      break;
    case 'escaped':
      folder = escapedFolder(username);
      break;
  }
  const problem = segmentProblem(folder);
  if (problem !== undefined)
    return {
      ok: false,
      reason: naming === 'plain' ? `folder name ${problem}` : `${naming} folder name ${problem}`,
    };
  return { ok: true, folder };
}

/** Replaces every `{username}` in a volume name or driver option with the folder name, as the seed does. */
export function expandTemplate(template: string, folder: string): string {
  return template.split(USERNAME_PLACEHOLDER).join(folder);
}

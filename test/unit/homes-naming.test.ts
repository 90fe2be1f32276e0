import { describe, expect, it } from 'vitest';
import {
  escapedFolder,
  expandTemplate,
  folderName,
  md5Folder,
  segmentProblem,
  type FolderNaming,
} from '../../src/homes/naming.js';

/*
 * Expected values come from Python 3, not from this implementation:
 *
 *   md5:     python3 -c "import hashlib; print(hashlib.md5('a.b@x'.encode('utf-8')).hexdigest())"
 *            (the seed's SwarmSpawner, zonca/SwarmSpawner@createfolder)
 *   escaped: escapism 1.0.1's escape() re-implemented verbatim in a throwaway script (escapism is
 *            not installable here), called as dockerspawner's DockerSpawner._escape does:
 *
 *     def _escape_char(c, escape_char):
 *         return ''.join(escape_char + ('%X' % b) for b in c.encode('utf8'))
 *     def escape(s, safe, escape_char):
 *         safe = set(safe); safe.discard(escape_char)
 *         return ''.join(c if c in safe else _escape_char(c, escape_char) for c in s)
 *     escape(name, set(string.ascii_lowercase + string.digits), '-').lower()
 */
const VECTORS: readonly { name: string; md5: string; escaped: string }[] = [
  { name: 'a.b@x', md5: '9a99be21bcaf57132f1ce600d2fa9978', escaped: 'a-2eb-40x' },
  // Upper case is outside the safe set, so it is escaped before the final lower(): not `alice`.
  { name: 'Alice', md5: '64489c85dc2fe0787b85cd87214b3810', escaped: '-41lice' },
  { name: 'alice', md5: '6384e2b2184bcbf58eccf10ca7a6563c', escaped: 'alice' },
  // NFC ë is U+00EB, UTF-8 c3 ab.
  { name: 'zoë', md5: 'd29ef0d0cdf4c8c297ed4840b9aa2017', escaped: 'zo-c3-ab' },
  { name: 'ZOË', md5: '2a721a19bd07951a2b9e90d1d2bfa67a', escaped: '-5a-4f-c3-8b' },
  // `-` is the escape character, so it is escaped too (`-2d`), which keeps the scheme reversible.
  { name: 'user_name-1', md5: 'd80eb3cfd78cb055e4246ca73e72f83f', escaped: 'user-5fname-2d1' },
  {
    name: 'jane.doe+lab@example.edu',
    md5: '1114cf0123ac1094209a4a1c848cd639',
    escaped: 'jane-2edoe-2blab-40example-2eedu',
  },
  { name: '日本', md5: '4dbed2e657457884e67137d3514119b3', escaped: '-e6-97-a5-e6-9c-ac' },
  // NFD: a + U+0301 are two code points, escaped one by one, as Python iterates them.
  { name: 'a\u0301', md5: '44b83bbc12da505b97ae458cb84798cf', escaped: 'a-cc-81' },
  // An astral character is one code point (four bytes), not two UTF-16 halves.
  { name: '😀', md5: '2a02eac39d716a70ecf37579185927b6', escaped: '-f0-9f-98-80' },
  { name: '0', md5: 'cfcd208495d565ef66e7dff9f98764da', escaped: '0' },
];

describe('md5 naming (the seed SwarmSpawner)', () => {
  it.each(VECTORS)('$name → $md5', ({ name, md5 }) => {
    expect(md5Folder(name)).toBe(md5);
    expect(folderName(name, 'md5')).toEqual({ ok: true, folder: md5 });
  });
});

describe('escaped naming (dockerspawner)', () => {
  it.each(VECTORS)('$name → $escaped', ({ name, escaped }) => {
    expect(escapedFolder(name)).toBe(escaped);
    expect(folderName(name, 'escaped')).toEqual({ ok: true, folder: escaped });
  });
});

describe('plain naming', () => {
  it.each(['a.b@x', 'Alice', 'zoë', 'user_name-1', 'jane.doe+lab@example.edu', 'x'.repeat(255)])(
    'keeps %s as it is',
    (name) => {
      expect(folderName(name, 'plain')).toEqual({ ok: true, folder: name });
    },
  );

  it.each([
    ['', /empty/],
    ['.', /"\."/],
    ['..', /"\."/],
    ['.hidden', /start with "\."/],
    ['a/b', /"\/"/],
    ['../x', /start with "\."/],
    ['/etc', /"\/"/],
    ['a\0b', /control characters|NUL/],
    ['a\nb', /control/],
    ['tab\tname', /control/],
    ['del\u007f', /control/],
    ['c1\u0085', /control/],
    ['lone\ud800', /Unicode/],
    ['x'.repeat(256), /255 bytes/],
    // 128 characters of two bytes each: the limit is bytes, not characters.
    ['é'.repeat(128), /255 bytes/],
  ])('refuses %j', (name, reason) => {
    const result = folderName(name, 'plain');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe('names no scheme accepts', () => {
  it.each<[string, FolderNaming]>([
    ['', 'md5'],
    ['', 'escaped'],
    ['a\0b', 'md5'],
    ['a\nb', 'escaped'],
    ['lone\udc00', 'md5'],
  ])('refuses %j under %s', (name, naming) => {
    expect(folderName(name, naming).ok).toBe(false);
  });

  it('refuses an escaped name longer than NAME_MAX', () => {
    // 100 × U+65E5 → 100 × 9 characters once escaped.
    const result = folderName('日'.repeat(100), 'escaped');
    expect(result).toEqual({ ok: false, reason: expect.stringMatching(/255 bytes/) as unknown });
  });

  it('hashes a name the plain rule would refuse for its shape', () => {
    expect(folderName('../x', 'md5')).toEqual({ ok: true, folder: md5Folder('../x') });
    expect(folderName('../x', 'escaped')).toEqual({ ok: true, folder: '-2e-2e-2fx' });
  });
});

describe('segmentProblem', () => {
  it('accepts a safe segment', () => {
    expect(segmentProblem('jupyter-user_1@x.org')).toBeUndefined();
  });
});

describe('expandTemplate', () => {
  it.each([
    ['jupyterhub-user-{username}', 'abc', 'jupyterhub-user-abc'],
    [
      ':/var/nfs/{username}/',
      '9a99be21bcaf57132f1ce600d2fa9978',
      ':/var/nfs/9a99be21bcaf57132f1ce600d2fa9978/',
    ],
    ['{username}-{username}', 'a', 'a-a'],
    ['no-placeholder', 'a', 'no-placeholder'],
    // The replacement is literal: `$&` is not a back-reference here.
    ['v-{username}', '$&', 'v-$&'],
  ])('%s with %s → %s', (template, folder, expected) => {
    expect(expandTemplate(template, folder)).toBe(expected);
  });
});

/**
 * A generated corpus of invalid desired records, as people could write them with redis-cli: every
 * case is one raw Redis key (a HASH, or another type), the path the reader must name, and whether
 * the controller can write a status for it. Nothing here is a hand-written list of cases: each
 * generator walks a kind's zod schema or crosses a small table of bad values with every kind.
 *
 * Every case name carries `tag`, so a test can find any Docker object or event made from it.
 */
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { KeySpace } from '../../src/desired/keys.js';
import { KIND_DEFINITIONS, KINDS, type Kind } from '../../src/resources/kinds/index.js';
import { API_VERSION } from '../../src/resources/metadata.js';

export type CorpusCategory =
  | 'wrong-type'
  | 'invalid-json'
  | 'unknown-field'
  | 'reserved-field'
  | 'oversized'
  | 'nested'
  | 'docker-name'
  | 'username'
  | 'lookalike-kind'
  | 'quota'
  | 'not-a-hash'
  | 'malformed-key';

/** How a case is written: `HSET key f v …` for a hash, or the command of another Redis type. */
export type RawWrite =
  | { readonly type: 'hash'; readonly fields: Readonly<Record<string, string>> }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'list'; readonly items: readonly string[] }
  | { readonly type: 'set'; readonly members: readonly string[] }
  | { readonly type: 'zset'; readonly members: readonly string[] }
  | { readonly type: 'stream'; readonly fields: Readonly<Record<string, string>> };

export interface CorpusCase {
  /** Unique and readable, e.g. `wrong-type Service.replicas "two"`. */
  readonly id: string;
  readonly category: CorpusCategory;
  readonly key: string;
  /** As spelled in the key (may be no kind at all). */
  readonly kind: string;
  readonly name: string;
  readonly write: RawWrite;
  /** The issue path the store must report for this record, e.g. `spec.replicas`. */
  readonly expectedPath: string;
  /** The kind the controller writes status Invalid under; undefined for unknown kinds and malformed keys. */
  readonly statusKind: Kind | undefined;
}

export interface CorpusOptions {
  /** The store's key prefix. */
  readonly prefix: string;
  /** A short alphanumeric marker, at most 12 characters, that every case name contains. */
  readonly tag: string;
}

/** 1 MiB: far beyond any legitimate field (configs and secrets stop at 500 KiB). */
export const ONE_MIB = 1024 * 1024;

/** A spec each kind accepts, to which one bad field is added. Empty specs keep a hash through `_apiVersion`. */
export const VALID_BASE: Readonly<Record<Kind, Readonly<Record<string, string>>>> = {
  Network: { _apiVersion: API_VERSION },
  Volume: { _apiVersion: API_VERSION },
  Config: { data: 'listen 80;\n' },
  Secret: { data: 's3cret' },
  HomeFolders: { root: '/srv/homes' },
  Service: { image: 'local/busybox:1' },
  Container: { image: 'local/busybox:1' },
  User: { _apiVersion: API_VERSION },
};

/** The kinds realised as Docker objects, whose names follow Docker's rules. */
const DOCKER_KINDS = ['Network', 'Volume', 'Config', 'Secret', 'Service', 'Container'] as const;

type FieldClass = 'string' | 'number' | 'boolean' | 'enum' | 'json' | 'size';

/** A raw hash value and the JS value the codec reads it as; the schema decides whether it is bad. */
interface Candidate {
  readonly raw: string;
  readonly value: unknown;
}

const CANDIDATES: Readonly<Record<FieldClass, readonly Candidate[]>> = {
  string: [
    { raw: '', value: '' },
    { raw: 'ten seconds', value: 'ten seconds' },
    { raw: 'relative/path', value: 'relative/path' },
    { raw: 'rwxrwx---', value: 'rwxrwx---' },
  ],
  number: [
    { raw: 'two', value: 'two' },
    { raw: '-1', value: -1 },
    { raw: '1.5', value: 1.5 },
    { raw: '1e400', value: Number.POSITIVE_INFINITY },
    { raw: '[2]', value: '[2]' },
  ],
  boolean: [
    { raw: 'yes', value: 'yes' },
    { raw: '1', value: '1' },
    { raw: 'True', value: 'True' },
  ],
  enum: [
    { raw: 'bogus', value: 'bogus' },
    { raw: '', value: '' },
  ],
  json: [
    { raw: '42', value: 42 },
    { raw: '"text"', value: 'text' },
    { raw: 'null', value: null },
  ],
  size: [],
};

/** Malformed JSON, one per JSON field in turn. */
const BROKEN_JSON = [
  '[{"target": 80',
  '{a: 1}',
  "{'k': 'v'}",
  '[1,]',
  '{"a": 1}}',
  '[NaN]',
  '{"a": "\\x"}',
  '[',
  '{"a" 1}',
];

/** Sizes xfs_quota and Docker cannot read: negative, unknown suffix, not a number, unsafe. */
export const BAD_QUOTAS = [
  '-1',
  '1Zi',
  'abc',
  '1e400',
  '1.5',
  '',
  ' ',
  '1 G',
  '0x10',
  '9'.repeat(30),
  'Infinity',
  'NaN',
  '2GB!',
  '-5M',
];

/** Kind names that look like real ones: Cyrillic/Greek letters, fullwidth forms, ligatures, case and spacing. */
export const LOOKALIKE_KINDS = [
  'S\u0435rvice', // Cyrillic ie
  'Servi\u0441e', // Cyrillic es
  '\uff33ervice', // fullwidth S
  '\uff33\uff45\uff52\uff56\uff49\uff43\uff45', // all fullwidth
  '\u039detwork', // Greek Nu
  'V\u03bflume', // Greek omicron
  'U\u0455er', // Cyrillic dze
  'Con\ufb01g', // fi ligature
  'Service\u200b', // zero-width space
  'Secret ',
  'service',
  'SERVICE',
  'Services',
  'HomeFolder',
  'Gadget',
  '__proto__',
  'constructor',
  'toString',
];

const zodDef = (schema: z.core.$ZodType): z.core.$ZodTypes['_zod']['def'] =>
  (schema as z.core.$ZodTypes)._zod.def;

/** The top-level class of a spec field, after peeling `optional`. */
function classify(schema: z.core.$ZodType): FieldClass {
  const def = zodDef(schema);
  switch (def.type) {
    case 'optional':
      return classify(def.innerType);
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'enum':
      return 'enum';
    case 'union': {
      const options = def.options.map(classify);
      if (options.includes('json')) return 'json';
      return 'size';
    }
    default:
      return 'json';
  }
}

function specShape(kind: Kind): Readonly<Record<string, z.core.$ZodType>> {
  return KIND_DEFINITIONS[kind].spec.shape;
}

function fieldRejects(kind: Kind, field: string, value: unknown): boolean {
  const schema = specShape(kind)[field] as z.ZodType | undefined;
  return schema !== undefined && !schema.safeParse(value).success;
}

/** Generates every case. Deterministic: the same options give the same corpus. */
export function generateCorpus(options: CorpusOptions): CorpusCase[] {
  const { tag } = options;
  if (!/^[a-z0-9]{1,12}$/.test(tag)) throw new Error(`corpus tag must be 1-12 of [a-z0-9]: ${tag}`);
  const keys = new KeySpace(options.prefix);
  const cases: CorpusCase[] = [];
  const ids = new Set<string>();
  let serial = 0;
  /** A fresh, valid name for every kind (alphanumeric, 2-16 characters). */
  const freshName = (): string => `${tag}${(serial++).toString(36).padStart(3, '0')}`;

  const add = (input: Omit<CorpusCase, 'key' | 'statusKind'> & { key?: string }): void => {
    const key = input.key ?? `${options.prefix}:desired:${input.kind}:${input.name}`;
    // Status is written under a known kind, for a key that names it.
    const known = (KINDS as readonly string[]).includes(input.kind) ? (input.kind as Kind) : undefined;
    const statusKind = keys.parseDesired(key)?.knownKind === true ? known : undefined;
    if (ids.has(input.id)) throw new Error(`duplicate corpus id ${input.id}`);
    ids.add(input.id);
    cases.push({ ...input, key, statusKind });
  };
  const hashCase = (
    category: CorpusCategory,
    kind: Kind,
    label: string,
    extra: Record<string, string>,
    expectedPath: string,
    name: string = freshName(),
  ): void =>
    add({
      id: `${category} ${kind}.${label}`,
      category,
      kind,
      name,
      write: { type: 'hash', fields: { ...VALID_BASE[kind], ...extra } },
      expectedPath,
    });

  for (const kind of KINDS) {
    const shape = specShape(kind);
    let broken = 0;
    for (const [field, schema] of Object.entries(shape)) {
      const fieldClass = classify(schema);
      // Wrong types: every candidate of the field's class that its own schema refuses.
      for (const candidate of CANDIDATES[fieldClass]) {
        if (kind === 'Config' || kind === 'Secret') {
          if (field === 'file') continue; // refused for its own reason, below
        }
        if (!fieldRejects(kind, field, candidate.value)) continue;
        hashCase(
          'wrong-type',
          kind,
          `${field} ${JSON.stringify(candidate.raw)}`,
          { [field]: candidate.raw },
          `spec.${field}`,
        );
      }
      // Malformed JSON in every field that holds JSON.
      if (fieldClass === 'json') {
        const raw = BROKEN_JSON[broken++ % BROKEN_JSON.length] ?? '[';
        hashCase('invalid-json', kind, `${field} ${JSON.stringify(raw)}`, { [field]: raw }, `spec.${field}`);
      }
    }
    // Metadata JSON: broken, and valid JSON of the wrong shape.
    hashCase('invalid-json', kind, '_labels broken', { _labels: '{"team": ' }, 'metadata.labels');
    hashCase(
      'invalid-json',
      kind,
      '_annotations broken',
      { _annotations: "{'a': 'b'}" },
      'metadata.annotations',
    );
    hashCase('wrong-type', kind, '_labels list', { _labels: '["team"]' }, 'metadata.labels');
    hashCase('wrong-type', kind, '_labels number value', { _labels: '{"team": 1}' }, 'metadata.labels.team');
    hashCase(
      'reserved-field',
      kind,
      '_labels reserved key',
      { _labels: '{"io.swarmkeeper.managed": "false"}' },
      'metadata.labels.io.swarmkeeper.managed',
    );
    // Fields the kind does not have: typos, wrong case, manifest envelope words, unknown reserved names.
    const someField = Object.keys(shape)[0] ?? 'spec';
    for (const unknown of [`${someField}s`, someField.toUpperCase(), 'metadata', 'kind', 'sp ec']) {
      if (Object.hasOwn(shape, unknown)) continue;
      hashCase('unknown-field', kind, `${unknown} unknown`, { [unknown]: 'x' }, `spec.${unknown}`);
    }
    hashCase('reserved-field', kind, '_label unknown', { _label: '{}' }, '_label');
    hashCase('reserved-field', kind, '_apiVersion v2', { _apiVersion: 'swarmkeeper/v2' }, '_apiVersion');
    hashCase('reserved-field', kind, '_apiVersion k8s', { _apiVersion: 'v1' }, '_apiVersion');
    // Redis types other than HASH under a desired key.
    const others: RawWrite[] = [
      { type: 'string', value: 'image local/busybox:1' },
      { type: 'list', items: ['image', 'local/busybox:1'] },
      { type: 'set', members: ['image'] },
      { type: 'zset', members: ['image'] },
      { type: 'stream', fields: { image: 'local/busybox:1' } },
    ];
    for (const write of others) {
      add({
        id: `not-a-hash ${kind} ${write.type}`,
        category: 'not-a-hash',
        kind,
        name: freshName(),
        write,
        expectedPath: 'type',
      });
    }
  }

  // Config and Secret records hold data; `file` belongs to manifests only.
  for (const kind of ['Config', 'Secret'] as const) {
    hashCase('unknown-field', kind, 'file in a record', { file: 'nginx.conf' }, 'spec.file');
  }

  // 1 MiB values, in plain, JSON and metadata fields.
  const big = 'x'.repeat(ONE_MIB);
  const oversized: [Kind, string, string, string][] = [
    ['Service', 'image', `local/${big}`, 'spec.image'],
    ['Service', 'hostname', big, 'spec.hostname'],
    ['Service', 'env', JSON.stringify({ BIG: big }), 'spec.env'],
    ['Container', 'command', JSON.stringify(['echo', big]), 'spec.command'],
    ['Container', 'user', big, 'spec.user'],
    ['Config', 'data', big, 'spec.data'],
    ['Secret', 'data', big, 'spec.data'],
    ['Network', 'driver', big, 'spec.driver'],
    ['Volume', 'driverOpts', JSON.stringify({ device: big }), 'spec.driverOpts'],
    ['HomeFolders', 'root', `/${big}`, 'spec.root'],
    ['User', 'email', `${big}@example.org`, 'spec.email'],
    ['Service', '_labels', JSON.stringify({ team: big }), 'metadata.labels'],
    ['Volume', '_annotations', JSON.stringify({ note: big }), 'metadata.annotations'],
  ];
  for (const [kind, field, value, path] of oversized) {
    hashCase('oversized', kind, `${field} 1MiB`, { [field]: value }, path);
  }

  // Bad values below the top level: the path goes down to the member.
  const nested: [Kind, string, Record<string, string>, string][] = [
    ['Service', 'global with replicas', { mode: 'global', replicas: '2' }, 'spec.replicas'],
    ['Service', 'port out of range', { ports: '[{"target": 70000}]' }, 'spec.ports[0].target'],
    ['Service', 'port zero', { ports: '[{"target": 0}]' }, 'spec.ports[0].target'],
    ['Service', 'port as text', { ports: '[{"target": "http"}]' }, 'spec.ports[0].target'],
    [
      'Service',
      'bind mount without source',
      { mounts: '[{"type":"bind","target":"/x"}]' },
      'spec.mounts[0].source',
    ],
    [
      'Service',
      'relative bind source',
      { mounts: '[{"type":"bind","source":"tmp","target":"/x"}]' },
      'spec.mounts[0].source',
    ],
    ['Service', 'relative mount target', { mounts: '[{"target":"x"}]' }, 'spec.mounts[0].target'],
    [
      'Service',
      'volume source ../',
      { mounts: '[{"source":"../etc","target":"/x"}]' },
      'spec.mounts[0].source',
    ],
    ['Service', 'config source invalid', { configs: '[{"source":"-conf"}]' }, 'spec.configs[0].source'],
    [
      'Service',
      'secret mode not octal',
      { secrets: '[{"source":"s","mode":"0999"}]' },
      'spec.secrets[0].mode',
    ],
    ['Service', 'network name with slash', { networks: '["a/b"]' }, 'spec.networks[0]'],
    ['Service', 'env name with =', { env: '{"A=B": "1"}' }, 'spec.env'],
    ['Service', 'capability lowercase', { capAdd: '["net_admin"]' }, 'spec.capAdd[0]'],
    ['Service', 'cpus zero', { resources: '{"limits":{"cpus":"0"}}' }, 'spec.resources.limits.cpus'],
    ['Service', 'cpus negative', { resources: '{"limits":{"cpus":-1}}' }, 'spec.resources.limits.cpus'],
    ['Service', 'cpus too many', { resources: '{"limits":{"cpus":5000}}' }, 'spec.resources.limits.cpus'],
    ['Service', 'memory 1Zi', { resources: '{"limits":{"memory":"1Zi"}}' }, 'spec.resources.limits.memory'],
    [
      'Service',
      'memory -1',
      { resources: '{"reservations":{"memory":-1}}' },
      'spec.resources.reservations.memory',
    ],
    ['Service', 'delay without unit', { restartPolicy: '{"delay":"10"}' }, 'spec.restartPolicy.delay'],
    [
      'Service',
      'failure ratio 2',
      { updateConfig: '{"maxFailureRatio":2}' },
      'spec.updateConfig.maxFailureRatio',
    ],
    ['Service', 'unknown nested field', { placement: '{"constraint":["x"]}' }, 'spec.placement'],
    [
      'Container',
      'tmpfs size -1',
      { mounts: '[{"type":"tmpfs","target":"/t","tmpfs":{"size":"-1"}}]' },
      'spec.mounts[0].tmpfs.size',
    ],
    ['Container', 'pids zero', { resources: '{"limits":{"pids":0}}' }, 'spec.resources.limits.pids'],
    [
      'Container',
      'reserved container label',
      { containerLabels: '{"io.swarmkeeper.owner":"someone-else"}' },
      'spec.containerLabels.io.swarmkeeper.owner',
    ],
    ['Network', 'ipam subnet empty', { ipam: '{"config":[{"subnet":""}]}' }, 'spec.ipam.config[0].subnet'],
    ['HomeFolders', 'owner uid -1', { owner: '{"uid":-1,"gid":100}' }, 'spec.owner.uid'],
    [
      'HomeFolders',
      'volume without placeholder',
      { volume: '{"name":"jupyterhub-user"}' },
      'spec.volume.name',
    ],
    ['HomeFolders', 'quota driver zfs', { quota: '{"driver":"zfs"}' }, 'spec.quota.driver'],
  ];
  for (const [kind, label, fields, path] of nested) hashCase('nested', kind, label, fields, path);

  // Quotas and other sizes people write by hand.
  for (const quota of BAD_QUOTAS) {
    hashCase('quota', 'User', `quota ${JSON.stringify(quota)}`, { quota }, 'spec.quota');
    // Inside JSON the value stays a string, and "1.5" is then 1.5 bytes, rounded: a size, if an odd one.
    if (quota === '1.5') continue;
    hashCase(
      'quota',
      'HomeFolders',
      `quota.default ${JSON.stringify(quota)}`,
      { quota: JSON.stringify({ driver: 'xfs', default: quota }) },
      'spec.quota.default',
    );
  }
  for (const memory of BAD_QUOTAS.filter((q) => q !== '1.5').slice(0, 6)) {
    hashCase(
      'quota',
      'Container',
      `memory ${JSON.stringify(memory)}`,
      { resources: JSON.stringify({ limits: { memory } }) },
      'spec.resources.limits.memory',
    );
  }

  // Names Docker refuses, for each kind realised as a Docker object (and HomeFolders, named alike).
  const badDockerNames: [string, (kind: Kind) => boolean][] = [
    [`-${tag}`, () => true],
    [`_${tag}`, () => true],
    [`${tag}-`, (k) => k !== 'Volume' && k !== 'Container'],
    [`${tag} x`, () => true],
    [`${tag}/x`, () => true],
    [`${tag}:x`, () => true],
    [`${tag}\0x`, () => true],
    [`${tag};rm -rf x`, () => true],
    [`${tag}$(id)`, () => true],
    [`${tag}\uff58`, () => true], // fullwidth x
    [`${tag}\u00e9`, () => true],
    [`${tag}\nx`, () => true],
    [`.${tag}`, () => true],
    [`${tag}${'x'.repeat(64 - tag.length)}`, (k) => k !== 'Volume' && k !== 'Container'],
    [`${tag}${'x'.repeat(55 - tag.length)}`, (k) => k === 'Config' || k === 'Secret'],
    [`${tag}${'x'.repeat(256 - tag.length)}`, (k) => k === 'Volume' || k === 'Container'],
  ];
  for (const kind of [...DOCKER_KINDS, 'HomeFolders'] as const) {
    for (const [name, applies] of badDockerNames) {
      if (!applies(kind)) continue;
      hashCase('docker-name', kind, `name ${JSON.stringify(name)}`, {}, 'metadata.name', name);
    }
    // A one-character name: fine for Swarm objects, too short for volumes and containers.
    if (kind === 'Volume' || kind === 'Container') {
      hashCase('docker-name', kind, 'name one character', {}, 'metadata.name', 'x');
    }
  }
  hashCase('docker-name', 'Service', 'name empty', {}, 'metadata.name', '');

  // Usernames that would escape or confuse a home folder path, a shell, or a reader.
  const badUsernames = [
    `../${tag}`,
    '..',
    '.',
    `${tag}/x`,
    `/${tag}`,
    `${tag}\0`,
    `${tag};id`,
    `$(touch /tmp/${tag})`,
    `\`id\`${tag}`,
    `${tag} x`,
    `.${tag}`,
    `-${tag}`,
    `${tag}\n`,
    `${tag}\t`,
    `${tag}\uff0fx`, // fullwidth solidus
    `\uff0e\uff0e\uff0f${tag}`, // fullwidth ../
    `..\u2215${tag}`, // division slash
    `${tag}\u200b`, // zero-width space
    `${tag}\u202e`, // right-to-left override
    `${tag}e\u0301`, // decomposed é: not NFC
    `\uff41\uff4c\uff49\uff43\uff45${tag}`, // fullwidth alice
    `${tag}\ufb01`, // fi ligature
    `${tag}\u2126`, // Ohm sign, canonically Ω
    `${tag}${'x'.repeat(129 - tag.length)}`,
    `${tag}*`,
    `${tag}|x`,
    `${tag}>x`,
    `${tag}\\x`,
    `${tag}'x`,
    `${tag}"x`,
  ];
  for (const name of badUsernames) {
    hashCase('username', 'User', `name ${JSON.stringify(name)}`, { quota: '1Gi' }, 'metadata.name', name);
  }

  // Kinds that are not kinds, however much they look like one. Status cannot be written for them.
  for (const kind of LOOKALIKE_KINDS) {
    add({
      id: `lookalike-kind ${JSON.stringify(kind)}`,
      category: 'lookalike-kind',
      kind,
      name: freshName(),
      write: { type: 'hash', fields: { ...VALID_BASE.Service } },
      expectedPath: 'kind',
    });
  }

  // Keys that do not have the form <prefix>:desired:<Kind>:<name>.
  const malformed = [`${options.prefix}:desired:${tag}`, `${options.prefix}:desired::${tag}`];
  for (const key of malformed) {
    add({
      id: `malformed-key ${JSON.stringify(key.slice(options.prefix.length))}`,
      category: 'malformed-key',
      kind: '',
      name: '',
      key,
      write: { type: 'hash', fields: { ...VALID_BASE.Service } },
      expectedPath: 'key',
    });
  }

  // Sanity of the generator itself: one key per case, and every key under the prefix's desired space.
  const seen = new Set<string>();
  for (const c of cases) {
    if (seen.has(c.key)) throw new Error(`corpus key used twice: ${c.id}`);
    seen.add(c.key);
    if (c.statusKind !== undefined && keys.parseDesired(c.key)?.name !== c.name)
      throw new Error(`corpus key does not parse back: ${c.id}`);
  }
  return cases;
}

/** Writes one case as redis-cli would: one HSET with every field, or the command of its type. */
export async function writeCase(redis: Redis, c: CorpusCase): Promise<void> {
  const w = c.write;
  switch (w.type) {
    case 'hash':
      await redis.hset(c.key, w.fields);
      return;
    case 'string':
      await redis.set(c.key, w.value);
      return;
    case 'list':
      await redis.rpush(c.key, ...w.items);
      return;
    case 'set':
      await redis.sadd(c.key, ...w.members);
      return;
    case 'zset':
      await redis.zadd(c.key, ...w.members.flatMap((m, i) => [String(i), m]));
      return;
    case 'stream':
      await redis.xadd(c.key, '*', ...Object.entries(w.fields).flat());
      return;
  }
}

/** How many cases each category holds. */
export function countByCategory(cases: readonly CorpusCase[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of cases) counts[c.category] = (counts[c.category] ?? 0) + 1;
  return counts;
}

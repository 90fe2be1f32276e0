/**
 * Pure encoding between a typed resource and the flat Redis HASH that stores it, plus the status
 * HASH the controller writes beside it.
 *
 * A desired record is one HASH per resource (the key carries kind and name):
 *   - each top-level `spec` field is one hash field; strings, numbers and booleans are written
 *     plainly (`replicas` = `2`, `attachable` = `true`) so redis-cli edits look natural, while lists
 *     and maps are JSON;
 *   - fields starting with `_` are reserved for metadata (see {@link RESERVED_FIELDS}); spec field
 *     names never start with `_`.
 * Decoding reads each field by the type its kind's schema expects, so `HSET … replicas 2` becomes the
 * number 2, then validates the whole resource and reports every failing field instead of throwing.
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import type { FieldIssue } from '../errors.js';
import { KIND_DEFINITIONS, KINDS, isKind, type Kind } from '../resources/kinds/index.js';
import { API_VERSION } from '../resources/metadata.js';
import { formatPath, validateResource, type Resource, type Validation } from '../resources/resource.js';
import type { DriftEntry, HealthState, ResourceStatus, StoredRecord, SyncState } from './store.js';

/** The hash fields that are not spec fields. Every other field starting with `_` is invalid. */
export const RESERVED_FIELDS = {
  /**
   * The apiVersion the record was written with. Optional when reading (records created with
   * redis-cli lack it); always written, which also keeps a resource with an empty spec from being
   * an empty HASH, which Redis would delete.
   */
  apiVersion: '_apiVersion',
  /** `metadata.labels` as a JSON object; absent when the resource has none. */
  labels: '_labels',
  /** `metadata.annotations` as a JSON object; absent when the resource has none. */
  annotations: '_annotations',
} as const;

export const RESERVED_FIELD_PREFIX = '_';

/** The fields of a status HASH; `lastDrift` and `nodes` are JSON, the rest plain strings. */
export const STATUS_FIELDS = [
  'sync',
  'health',
  'message',
  'observedHash',
  'lastSyncedAt',
  'lastDriftAt',
  'lastDrift',
  'usedBytes',
  'quotaBytes',
  'nodes',
] as const satisfies readonly (keyof ResourceStatus)[];

const PAYLOAD_KINDS: ReadonlySet<Kind> = new Set<Kind>(['Config', 'Secret']);

/** The JSON types a field's raw string may be read as. */
type ValueType = 'string' | 'number' | 'boolean' | 'json';

const ALL_TYPES: ReadonlySet<ValueType> = new Set<ValueType>(['string', 'number', 'boolean', 'json']);

const NUMERIC_LITERAL = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * The largest value one hash field may hold: room for a Config or Secret at Swarm's 500 KiB limit,
 * far beyond any other field. A larger value (a runaway `redis-cli HSET`) is refused at its field
 * before it is parsed, so it never reaches the engine as an image name or an environment value.
 */
export const MAX_FIELD_BYTES = 512 * 1024;

/** The flat HASH for a resource. Inverse of {@link decodeResource} for every valid resource. */
export function encodeResource(resource: Resource): Record<string, string> {
  const hash: Record<string, string> = { [RESERVED_FIELDS.apiVersion]: API_VERSION };
  const { labels, annotations } = resource.metadata;
  if (labels !== undefined) hash[RESERVED_FIELDS.labels] = JSON.stringify(labels);
  if (annotations !== undefined) hash[RESERVED_FIELDS.annotations] = JSON.stringify(annotations);
  const shape = specShape(resource.kind);
  for (const [field, value] of Object.entries(resource.spec as Record<string, unknown>)) {
    if (value === undefined) continue;
    hash[field] = encodeValue(value, valueTypes(shape[field]));
  }
  return hash;
}

/**
 * Reads a HASH as the resource `kind`/`name` (both from the key). Never throws: a bad record
 * yields every issue found, JSON and schema problems together, with paths such as `spec.replicas`.
 */
export function decodeResource(
  kind: string,
  name: string,
  hash: Readonly<Record<string, string>>,
): Validation {
  if (!isKind(kind)) {
    return {
      ok: false,
      issues: [{ path: 'kind', message: `unknown kind "${kind}"; expected one of ${KINDS.join(', ')}` }],
    };
  }
  const issues: FieldIssue[] = [];
  /** Fields already reported here, whose follow-on schema issues would only repeat the news. */
  const reported = new Set<string>();
  const metadata: Record<string, unknown> = { name };
  const spec: Record<string, unknown> = {};
  const shape = specShape(kind);

  for (const [field, raw] of Object.entries(hash)) {
    if (Buffer.byteLength(raw) > MAX_FIELD_BYTES) {
      const path = fieldPath(field);
      issues.push({ path, message: `must be at most ${MAX_FIELD_BYTES} bytes (512 KiB)` });
      reported.add(path);
      continue;
    }
    if (field.startsWith(RESERVED_FIELD_PREFIX)) {
      if (field === RESERVED_FIELDS.apiVersion) {
        // Checked here rather than by validateResource, which stops at a bad apiVersion.
        if (raw !== API_VERSION) issues.push({ path: field, message: `must be "${API_VERSION}"` });
      } else if (field === RESERVED_FIELDS.labels || field === RESERVED_FIELDS.annotations) {
        const target = field === RESERVED_FIELDS.labels ? 'labels' : 'annotations';
        const parsed = parseJson(raw);
        if (parsed.ok) metadata[target] = parsed.value;
        else {
          issues.push({ path: formatPath(['metadata', target]), message: `invalid JSON: ${parsed.reason}` });
          reported.add(formatPath(['metadata', target]));
        }
      } else {
        issues.push({ path: field, message: 'unknown reserved field' });
      }
      continue;
    }
    const path = formatPath(['spec', field]);
    const schema = Object.hasOwn(shape, field) ? shape[field] : undefined;
    if (schema === undefined) {
      // Left out of validation so the strict schema's whole-object complaint does not repeat this one.
      issues.push({ path, message: 'unknown field' });
      reported.add(path);
      continue;
    }
    if (PAYLOAD_KINDS.has(kind) && field === 'file') {
      issues.push({ path, message: 'only allowed in manifests; apply reads the file into data' });
      reported.add(path);
      continue;
    }
    const value = decodeValue(raw, valueTypes(schema));
    if (value.ok) spec[field] = value.value;
    else {
      issues.push({ path, message: `invalid JSON: ${value.reason}` });
      reported.add(path);
    }
  }

  const validation = validateResource({ apiVersion: API_VERSION, kind, metadata, spec });
  if (validation.ok && issues.length === 0) return validation;
  const schemaIssues = validation.ok
    ? []
    : validation.issues.filter((issue) => !coveredBy(issue.path, reported));
  return { ok: false, issues: [...issues, ...schemaIssues] };
}

/** {@link decodeResource} as the store reports it: the record under `key`, valid or not. */
export function decodeRecord(input: {
  readonly key: string;
  readonly kind: string;
  readonly name: string;
  readonly hash: Readonly<Record<string, string>>;
}): StoredRecord {
  const { key, kind, name, hash } = input;
  const decoded = decodeResource(kind, name, hash);
  if (decoded.ok) return { ok: true, key, resource: decoded.resource };
  return { ok: false, key, kind, name, issues: decoded.issues };
}

/** Hash fields that differ between two encoded records (added, changed or removed), sorted. */
export function changedFields(
  current: Readonly<Record<string, string>> | undefined,
  next: Readonly<Record<string, string>>,
): string[] {
  const before = current ?? {};
  const fields = new Set([...Object.keys(before), ...Object.keys(next)]);
  return [...fields].filter((field) => before[field] !== next[field]).sort();
}

/** The status HASH fields for the parts of `status` that are set. */
export function encodeStatus(status: ResourceStatus): Record<string, string> {
  const hash: Record<string, string> = {};
  for (const field of STATUS_FIELDS) {
    const value = status[field];
    if (value === undefined) continue;
    hash[field] =
      typeof value === 'string' ? value : typeof value === 'number' ? String(value) : JSON.stringify(value);
  }
  return hash;
}

const SYNC_STATES: readonly SyncState[] = [
  'Synced',
  'OutOfSync',
  'Pending',
  'Invalid',
  'Conflict',
  'Error',
  'Retained',
  'Archived',
];
const HEALTH_STATES: readonly HealthState[] = ['Healthy', 'Progressing', 'Degraded', 'Missing'];

/**
 * Reads a status HASH; undefined when it is empty. Status is advisory and rewritten by the
 * controller, so a field someone garbled is dropped rather than failing the read.
 */
export function decodeStatus(hash: Readonly<Record<string, string>>): ResourceStatus | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  const status: {
    -readonly [F in keyof ResourceStatus]: ResourceStatus[F];
  } = {};
  const {
    sync,
    health,
    message,
    observedHash,
    lastSyncedAt,
    lastDriftAt,
    lastDrift,
    usedBytes,
    quotaBytes,
    nodes,
  } = hash;
  const used = Number(usedBytes);
  const quota = Number(quotaBytes);
  if (usedBytes !== undefined && Number.isSafeInteger(used) && used >= 0) status.usedBytes = used;
  if (quotaBytes !== undefined && Number.isSafeInteger(quota) && quota >= 0) status.quotaBytes = quota;
  if (sync !== undefined && isOneOf(sync, SYNC_STATES)) status.sync = sync;
  if (health !== undefined && isOneOf(health, HEALTH_STATES)) status.health = health;
  if (message !== undefined) status.message = message;
  if (observedHash !== undefined) status.observedHash = observedHash;
  if (lastSyncedAt !== undefined) status.lastSyncedAt = lastSyncedAt;
  if (lastDriftAt !== undefined) status.lastDriftAt = lastDriftAt;
  if (lastDrift !== undefined) {
    const parsed = parseJson(lastDrift);
    if (parsed.ok && Array.isArray(parsed.value)) {
      const entries: unknown[] = parsed.value;
      status.lastDrift = entries
        .filter(isDriftEntry)
        .map((e) => ({ path: e.path, desired: e.desired, actual: e.actual }));
    }
  }
  if (nodes !== undefined) {
    const decoded = parseJson(nodes);
    const parsed = decoded.ok ? nodeChecks.safeParse(decoded.value) : undefined;
    if (parsed?.success) status.nodes = parsed.data;
  }
  return status;
}

const nodeChecks = z.array(
  z.object({
    node: z.string(),
    hostname: z.string(),
    state: z.enum(['Synced', 'OutOfSync', 'Failed', 'Running', 'Unknown']),
    replaced: z.array(z.string()),
    inUse: z.array(z.object({ volume: z.string(), user: z.string() })),
    message: z.string(),
  }),
);

function isDriftEntry(value: unknown): value is DriftEntry {
  return typeof value === 'object' && value !== null && 'path' in value && typeof value.path === 'string';
}

function isOneOf<T extends string>(value: string, options: readonly T[]): value is T {
  return (options as readonly string[]).includes(value);
}

function specShape(kind: Kind): Readonly<Record<string, z.core.$ZodType>> {
  return KIND_DEFINITIONS[kind].spec.shape;
}

/** Where a hash field's problems are reported: `spec.<field>`, `metadata.labels`, or the reserved field itself. */
function fieldPath(field: string): string {
  if (field === RESERVED_FIELDS.labels) return formatPath(['metadata', 'labels']);
  if (field === RESERVED_FIELDS.annotations) return formatPath(['metadata', 'annotations']);
  if (field.startsWith(RESERVED_FIELD_PREFIX)) return field;
  return formatPath(['spec', field]);
}

function coveredBy(path: string, reported: ReadonlySet<string>): boolean {
  for (const field of reported) {
    if (path === field || path.startsWith(`${field}.`) || path.startsWith(`${field}[`)) return true;
  }
  return false;
}

/** The JSON types a schema accepts at its top level, after peeling off wrappers like `optional`. */
function valueTypes(schema: z.core.$ZodType | undefined, depth = 0): ReadonlySet<ValueType> {
  if (schema === undefined || depth > 20) return ALL_TYPES;
  const def = (schema as z.core.$ZodTypes)._zod.def;
  switch (def.type) {
    case 'string':
    case 'template_literal':
      return new Set(['string']);
    case 'number':
    case 'nan':
      return new Set(['number']);
    case 'boolean':
      return new Set(['boolean']);
    case 'enum':
      return typesOfLiterals(Object.values(def.entries));
    case 'literal':
      return typesOfLiterals(def.values);
    case 'object':
    case 'array':
    case 'record':
    case 'tuple':
    case 'map':
    case 'set':
      return new Set(['json']);
    case 'union': {
      const types = new Set<ValueType>();
      for (const option of def.options) for (const t of valueTypes(option, depth + 1)) types.add(t);
      return types;
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return valueTypes(def.innerType, depth + 1);
    case 'pipe':
      return valueTypes(def.in, depth + 1);
    case 'lazy':
      return valueTypes(def.getter(), depth + 1);
    default:
      return ALL_TYPES;
  }
}

function typesOfLiterals(values: readonly unknown[]): ReadonlySet<ValueType> {
  const types = new Set<ValueType>();
  for (const value of values) {
    if (typeof value === 'number') types.add('number');
    else if (typeof value === 'boolean') types.add('boolean');
    else if (value === null) types.add('json');
    else types.add('string');
  }
  return types;
}

type Decoded = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * Reads a raw hash value as the field's types allow. A value that fits none is passed on as the
 * raw string, so the schema reports a type error at the field's path.
 */
function decodeValue(raw: string, types: ReadonlySet<ValueType>): Decoded {
  const only = types.size === 1 ? [...types][0] : undefined;
  switch (only) {
    case 'string':
      return { ok: true, value: raw };
    case 'number':
      return { ok: true, value: NUMERIC_LITERAL.test(raw) ? Number(raw) : raw };
    case 'boolean':
      return { ok: true, value: raw === 'true' ? true : raw === 'false' ? false : raw };
    case 'json':
      return parseJson(raw);
    case undefined:
      break;
  }
  const first = raw.charAt(0);
  if ((first === '{' || first === '[') && types.has('json')) return parseJson(raw);
  if (first === '"' && types.has('string')) {
    // How encodeValue protects a string that would otherwise read as a number or as JSON.
    const parsed = parseJson(raw);
    if (parsed.ok && typeof parsed.value === 'string') return parsed;
  }
  if (types.has('number') && NUMERIC_LITERAL.test(raw)) return { ok: true, value: Number(raw) };
  if (types.has('boolean') && (raw === 'true' || raw === 'false')) return { ok: true, value: raw === 'true' };
  return { ok: true, value: raw };
}

function encodeValue(value: unknown, types: ReadonlySet<ValueType>): string {
  const plain = typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
  const back = decodeValue(plain, types);
  if (back.ok && isDeepStrictEqual(back.value, value)) return plain;
  // e.g. the size "2" in a string|number field: plain `2` would read back as the number 2.
  return JSON.stringify(value);
}

function parseJson(raw: string): Decoded {
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch (error: unknown) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

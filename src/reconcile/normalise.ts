/**
 * Reading engine JSON defensively and bringing both sides of a comparison to one form: absent,
 * empty and default values collapse to `undefined`, and collections whose order means nothing are
 * sorted. Inspect output is data from outside, so every reader here accepts `unknown`.
 */
import { canonicalJson } from './hash.js';
import {
  DEFAULT_BIND_PROPAGATION,
  DEFAULT_PAYLOAD_GID,
  DEFAULT_PAYLOAD_MODE,
  DEFAULT_PAYLOAD_UID,
  DEFAULT_VOLUME_DRIVER,
} from './defaults.js';

export type JsonRecord = Record<string, unknown>;
export type Location = readonly string[];

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asRecord(value: unknown): JsonRecord | undefined {
  return isRecord(value) ? value : undefined;
}

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function getIn(value: unknown, location: Location): unknown {
  let current = value;
  for (const key of location) {
    if (!isRecord(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** Sets a value, creating parents; `undefined` removes the member instead. */
export function setIn(target: JsonRecord, location: Location, value: unknown): void {
  const parents = location.slice(0, -1);
  const last = location[location.length - 1];
  if (last === undefined) return;
  let current = target;
  for (const key of parents) {
    const next = current[key];
    if (isRecord(next)) current = next;
    else {
      if (value === undefined) return;
      const created: JsonRecord = {};
      current[key] = created;
      current = created;
    }
  }
  if (value === undefined) delete current[last];
  else current[last] = value;
}

/** A deep copy of JSON data; engine specs are plain JSON, so nothing is lost. */
export function cloneJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

export function sameData(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** An object whose members may be left out but, once present, are never `undefined`. */
export type Compact<T> = { [K in keyof T]?: Exclude<T[K], undefined> };

/** Drops `undefined` members; an object left empty becomes `undefined`. */
export function compact<T extends object>(value: T): Compact<T> | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length === 0 ? undefined : (Object.fromEntries(entries) as Compact<T>);
}

/** `undefined` for values equal to the default, so "left out" and "set to the default" compare equal. */
export function unlessDefault<T>(value: T | undefined, fallback: T): T | undefined {
  return value === undefined || value === fallback ? undefined : value;
}

export function nonEmptyString(value: unknown): string | undefined {
  const text = asString(value);
  return text === undefined || text === '' ? undefined : text;
}

export function positiveNumber(value: unknown): number | undefined {
  const n = asNumber(value);
  return n === undefined || n === 0 ? undefined : n;
}

/** An ordered list of strings (a command line); empty reads as absent. */
export function stringList(value: unknown): string[] | undefined {
  const list = asArray(value).filter((v): v is string => typeof v === 'string');
  return list.length === 0 ? undefined : list;
}

/** A list of strings whose order means nothing: sorted, de-duplicated, empty reads as absent. */
export function stringSet(value: unknown, each: (item: string) => string = (s) => s): string[] | undefined {
  const list = stringList(value);
  return list === undefined ? undefined : [...new Set(list.map(each))].sort();
}

export function stringMap(value: unknown): Record<string, string> | undefined {
  const record = asRecord(value);
  if (!record) return undefined;
  const entries = Object.entries(record).filter((e): e is [string, string] => typeof e[1] === 'string');
  return entries.length === 0 ? undefined : Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Sorts by canonical JSON; for sets of objects (mounts, ports, attachments). */
export function sortedData<T>(items: readonly T[]): T[] | undefined {
  if (items.length === 0) return undefined;
  return [...items].sort((a, b) => {
    const x = canonicalJson(a);
    const y = canonicalJson(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * `KEY=value` entries keyed by name, the last one winning as it does in Docker, sorted.
 * `only`, when given, keeps just those names (for containers, whose env also holds the image's).
 */
export function envList(value: unknown, only?: ReadonlySet<string>): string[] | undefined {
  const byName = new Map<string, string>();
  for (const entry of stringList(value) ?? []) {
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (only === undefined || only.has(name)) byName.set(name, entry);
  }
  const list = [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, entry]) => entry);
  return list.length === 0 ? undefined : list;
}

export function envNames(entries: readonly string[]): Set<string> {
  return new Set(entries.map((entry) => (entry.includes('=') ? entry.slice(0, entry.indexOf('=')) : entry)));
}

/** `NET_ADMIN` and `CAP_NET_ADMIN` are the same capability; Docker stores the prefixed form. */
export function capabilityName(name: string): string {
  const upper = name.trim().toUpperCase();
  return upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

export function capabilitySet(value: unknown): string[] | undefined {
  return stringSet(value, capabilityName);
}

/** A placement constraint with the spaces swarmkit ignores removed: `node.role == manager` ≡ `node.role==manager`. */
export function constraintText(constraint: string): string {
  return constraint.replace(/\s*(==|!=)\s*/, '$1').trim();
}

/** A mount as compared: the Engine API `Mount` object with defaults and empty parts removed. */
export interface NormalMount {
  readonly type: string;
  readonly source?: string;
  readonly target: string;
  readonly readOnly?: true;
  readonly volume?: {
    readonly noCopy?: true;
    readonly labels?: Record<string, string>;
    readonly driver?: string;
    readonly driverOpts?: Record<string, string>;
  };
  readonly propagation?: string;
  readonly tmpfs?: { readonly sizeBytes?: number; readonly mode?: number };
}

export function normalMount(value: unknown): NormalMount | undefined {
  const m = asRecord(value);
  const target = asString(m?.Target);
  if (!m || target === undefined) return undefined;
  const volumeOptions = asRecord(m.VolumeOptions);
  const driverConfig = asRecord(volumeOptions?.DriverConfig);
  // An empty driver name means the engine's default driver.
  const driver = driverConfig ? (nonEmptyString(driverConfig.Name) ?? DEFAULT_VOLUME_DRIVER) : undefined;
  const volume = compact({
    noCopy: volumeOptions?.NoCopy === true ? (true as const) : undefined,
    labels: stringMap(volumeOptions?.Labels),
    driver: unlessDefault(driver, DEFAULT_VOLUME_DRIVER),
    driverOpts: stringMap(driverConfig?.Options),
  });
  const tmpfsOptions = asRecord(m.TmpfsOptions);
  const tmpfs = compact({
    sizeBytes: positiveNumber(tmpfsOptions?.SizeBytes),
    mode: positiveNumber(tmpfsOptions?.Mode),
  });
  const propagation = unlessDefault(
    nonEmptyString(asRecord(m.BindOptions)?.Propagation),
    DEFAULT_BIND_PROPAGATION,
  );
  return {
    type: nonEmptyString(m.Type) ?? 'volume',
    target,
    ...optional('source', nonEmptyString(m.Source)),
    ...optional('readOnly', m.ReadOnly === true ? (true as const) : undefined),
    ...optional('volume', volume),
    ...optional('propagation', propagation),
    ...optional('tmpfs', tmpfs),
  };
}

export function mountSet(value: unknown): NormalMount[] | undefined {
  return sortedData(asArray(value).flatMap((m) => normalMount(m) ?? []));
}

/** A config or secret reference as compared: which object, at which path, owned and moded how. */
export interface NormalPayloadRef {
  readonly name: string;
  readonly file: string;
  readonly uid: string;
  readonly gid: string;
  readonly mode: number;
}

/**
 * Reads ConfigReference / SecretReference lists. A relative file name is where the engine puts
 * it: under `/run/secrets/` for secrets, under `/` for configs.
 */
export function payloadRefSet(value: unknown, kind: 'Config' | 'Secret'): NormalPayloadRef[] | undefined {
  const refs = asArray(value).flatMap((raw): NormalPayloadRef[] => {
    const ref = asRecord(raw);
    const name = asString(ref?.[`${kind}Name`]);
    if (!ref || name === undefined) return [];
    const file = asRecord(ref.File);
    const fileName = nonEmptyString(file?.Name) ?? name;
    const base = kind === 'Secret' ? '/run/secrets/' : '/';
    return [
      {
        name,
        file: fileName.startsWith('/') ? fileName : `${base}${fileName}`,
        uid: nonEmptyString(file?.UID) ?? DEFAULT_PAYLOAD_UID,
        gid: nonEmptyString(file?.GID) ?? DEFAULT_PAYLOAD_GID,
        mode: asNumber(file?.Mode) ?? DEFAULT_PAYLOAD_MODE,
      },
    ];
  });
  return sortedData(refs);
}

/** A HealthConfig with zero durations and an empty test read as "inherit from the image". */
export function healthcheck(value: unknown): JsonRecord | undefined {
  const h = asRecord(value);
  if (!h) return undefined;
  return compact({
    test: stringList(h.Test),
    interval: positiveNumber(h.Interval),
    timeout: positiveNumber(h.Timeout),
    startPeriod: positiveNumber(h.StartPeriod),
    retries: positiveNumber(h.Retries),
  });
}

/** A float that swarmkit stores as float32: compare at the precision that survives the round trip. */
export function float32(value: unknown): number | undefined {
  const n = asNumber(value);
  return n === undefined ? undefined : Number(Math.fround(n).toPrecision(6));
}

/** `{key: value}` when value is defined, `{}` otherwise; keeps optional members truly absent. */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * Reading fields out of JSON the engine sent, where @types/dockerode says `any` (tasks, nodes, info,
 * events) or nothing at all: every accessor checks the type, so a field Docker leaves out or renames
 * becomes `undefined` instead of a crash three modules later.
 */

export type JsonRecord = Readonly<Record<string, unknown>>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function field(value: unknown, key: string): unknown {
  return isRecord(value) ? value[key] : undefined;
}

export function stringField(value: unknown, key: string): string | undefined {
  const v = field(value, key);
  return typeof v === 'string' ? v : undefined;
}

export function numberField(value: unknown, key: string): number | undefined {
  const v = field(value, key);
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function booleanField(value: unknown, key: string): boolean | undefined {
  const v = field(value, key);
  return typeof v === 'boolean' ? v : undefined;
}

/** A `map[string]string` such as Labels or Actor.Attributes; non-string values are dropped. */
export function stringMapField(value: unknown, key: string): Record<string, string> {
  const v = field(value, key);
  const out: Record<string, string> = {};
  if (!isRecord(v)) return out;
  for (const [k, item] of Object.entries(v)) {
    if (typeof item === 'string') out[k] = item;
  }
  return out;
}

/** The HTTP status dockerode attaches to the errors it raises for non-2xx replies. */
export function httpStatusOf(error: unknown): number | undefined {
  return numberField(error, 'statusCode');
}

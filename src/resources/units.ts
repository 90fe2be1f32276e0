/**
 * Parsers for the unit-carrying scalars people write in manifests and redis-cli edits:
 * sizes (`512M`, `1Gi`), CPU counts (`0.5`) and durations (`10s`, `1m30s`).
 * They are pure and return undefined for anything they do not accept, so schemas can turn
 * a rejection into a field-level message.
 */

const SIZE_PATTERN = /^(\d+(?:\.\d+)?)([kKmMgGtTpP]i?)?[bB]?$/;
const SIZE_FACTORS: Record<string, number> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/**
 * Bytes for a size such as `512M`, `1Gi`, `1g` or `1073741824`.
 * Suffixes are 1024-based with or without `i`, as Docker and xfs_quota read them.
 */
export function parseBytes(input: string | number): number | undefined {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  }
  const match = SIZE_PATTERN.exec(input.trim());
  if (!match) return undefined;
  const [, amount = '', suffix = ''] = match;
  const factor = SIZE_FACTORS[suffix.charAt(0).toLowerCase()];
  if (factor === undefined) return undefined;
  const bytes = Math.round(Number(amount) * factor);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const CPU_PATTERN = /^\d+(?:\.\d+)?$/;
const MAX_CPUS = 4096;

/** NanoCPUs for a CPU count such as `0.5` or `2`, as Swarm's Resources want them. */
export function parseNanoCpus(input: string | number): number | undefined {
  const text = typeof input === 'number' ? String(input) : input.trim();
  if (!CPU_PATTERN.test(text)) return undefined;
  const cpus = Number(text);
  if (!(cpus > 0) || cpus > MAX_CPUS) return undefined;
  return Math.round(cpus * 1e9);
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
const DURATION_WHOLE = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;
const NANOS_PER_UNIT: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Nanoseconds for a Go-style duration (`500ms`, `10s`, `1m30s`), the form compose files use. */
export function parseDurationNanos(input: string): number | undefined {
  const text = input.trim();
  if (text === '0') return 0;
  if (!DURATION_WHOLE.test(text)) return undefined;
  let total = 0;
  for (const [, amount = '0', unit = 's'] of text.matchAll(DURATION_PART)) {
    total += Number(amount) * (NANOS_PER_UNIT[unit] ?? 0);
  }
  const nanos = Math.round(total);
  return Number.isSafeInteger(nanos) ? nanos : undefined;
}

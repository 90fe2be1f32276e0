/**
 * Engine numbers back into the units people write in manifests: nanoseconds as Go durations,
 * bytes as 1024-based sizes, NanoCPUs as CPU counts, file modes as octal strings. Each is the
 * exact inverse of the parser in src/resources/units.ts, so a value read back translates to the
 * same engine number.
 */

const DURATION_UNITS: readonly [string, number][] = [
  ['h', 3600e9],
  ['m', 60e9],
  ['s', 1e9],
  ['ms', 1e6],
  ['us', 1e3],
  ['ns', 1],
];

/** `90000000000` → `1m30s`; `1500000000` → `1s500ms`; `0` → `0s`. */
export function formatDuration(nanos: number): string {
  if (!Number.isSafeInteger(nanos) || nanos < 0) return `${nanos}ns`;
  if (nanos === 0) return '0s';
  let rest = nanos;
  let out = '';
  for (const [unit, size] of DURATION_UNITS) {
    const amount = Math.floor(rest / size);
    if (amount > 0) {
      out += `${amount}${unit}`;
      rest -= amount * size;
    }
  }
  return out;
}

const SIZE_UNITS: readonly [string, number][] = [
  ['Ti', 1024 ** 4],
  ['Gi', 1024 ** 3],
  ['Mi', 1024 ** 2],
  ['Ki', 1024],
];

/** `67108864` → `64Mi`; a count no unit divides stays a plain number of bytes. */
export function formatBytes(bytes: number): string | number {
  for (const [unit, size] of SIZE_UNITS) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return bytes;
}

/** `500000000` NanoCPUs → `0.5`. */
export function formatCpus(nanoCpus: number): number {
  return nanoCpus / 1e9;
}

/** `0o444` → `"0444"`, as the manifest spells payload and folder modes. */
export function formatOctalMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

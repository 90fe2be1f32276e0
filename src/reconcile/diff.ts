/**
 * The shape every diff returns and the small engine the per-kind diffs share. Paths are in the
 * manifest's vocabulary (`spec.replicas`, `metadata.labels["team"]`); values are the normalised
 * engine values both sides were compared as (bytes, nanoseconds, sorted sets).
 */
import type { DriftEntry } from '../desired/store.js';
import { sameData } from './normalise.js';

export interface DiffResult {
  /** Spec fields that differ, ignored fields left out. */
  readonly fields: readonly DriftEntry[];
  /**
   * Labels that differ: swarmkeeper's own (`managed`, `spec-hash`) or `metadata.labels`. Kept
   * apart so a planner can change labels alone, which restarts nothing on a service.
   */
  readonly labels: readonly DriftEntry[];
  /** The subset of `fields` the engine cannot change in place: the object must be recreated. */
  readonly recreate: readonly DriftEntry[];
}

export interface DiffOptions {
  /** Spec field names to leave alone, as in the `swarmkeeper/ignore-fields` annotation. */
  readonly ignoreFields?: readonly string[];
}

export const NO_DRIFT: DiffResult = { fields: [], labels: [], recreate: [] };

export function hasDrift(diff: DiffResult): boolean {
  return diff.fields.length > 0 || diff.labels.length > 0;
}

/** Every difference, labels last: what a status `lastDrift` records. */
export function allDrift(diff: DiffResult): DriftEntry[] {
  return [...diff.fields, ...diff.labels];
}

/**
 * Whether `path` falls under an ignored field. `replicas` covers `spec.replicas`; `resources`
 * covers `spec.resources.limits.cpus`; a `spec.` prefix on the ignored name is optional.
 */
export function isIgnored(path: string, ignoreFields: readonly string[]): boolean {
  return ignoreFields.some((raw) => {
    const field = `spec.${raw.trim().replace(/^spec\./, '')}`;
    return path === field || path.startsWith(`${field}.`) || path.startsWith(`${field}[`);
  });
}

/** One compared field: how to read each side in normal form, and whether its drift forces a recreate. */
export interface FieldRule<D, O> {
  readonly path: string;
  readonly desired: (desired: D) => unknown;
  readonly observed: (observed: O) => unknown;
  /** Replaces data equality, for values with their own notion of sameness (image references). */
  readonly equals?: (desired: unknown, observed: unknown) => boolean;
  /** Compare only when this holds, e.g. when the manifest sets a field the image would otherwise fill. */
  readonly when?: (desired: D) => boolean;
  readonly recreate?: boolean;
}

export interface FieldDrift {
  readonly entry: DriftEntry;
  readonly recreate: boolean;
}

export function compareFields<D, O>(
  rules: readonly FieldRule<D, O>[],
  desired: D,
  observed: O,
  ignoreFields: readonly string[],
): FieldDrift[] {
  const drift: FieldDrift[] = [];
  for (const rule of rules) {
    if (isIgnored(rule.path, ignoreFields)) continue;
    if (rule.when !== undefined && !rule.when(desired)) continue;
    const want = rule.desired(desired);
    const have = rule.observed(observed);
    const equal = rule.equals ? rule.equals(want, have) : sameData(want, have);
    if (!equal)
      drift.push({
        entry: { path: rule.path, desired: want, actual: have },
        recreate: rule.recreate === true,
      });
  }
  return drift;
}

export function toDiffResult(fields: readonly FieldDrift[], labels: readonly DriftEntry[]): DiffResult {
  return {
    fields: fields.map((f) => f.entry),
    labels,
    recreate: fields.filter((f) => f.recreate).map((f) => f.entry),
  };
}

/**
 * Labels the desired object sets that the observed one lacks or holds differently. Labels on the
 * observed object that the manifest does not mention are left alone: other tools (stack deploy,
 * test harnesses) put their own there, and swarmkeeper cannot tell a stale label of its own from one.
 */
export function diffLabels(
  desired: Readonly<Record<string, string>> | undefined,
  observed: Readonly<Record<string, string>> | null | undefined,
): DriftEntry[] {
  const drift: DriftEntry[] = [];
  for (const [key, value] of Object.entries(desired ?? {})) {
    const actual = observed?.[key];
    if (actual !== value) drift.push({ path: labelPath(key), desired: value, actual });
  }
  return drift;
}

export function labelPath(key: string): string {
  return `metadata.labels[${JSON.stringify(key)}]`;
}

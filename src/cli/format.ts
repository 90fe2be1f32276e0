/** Rendering resources for people and scripts: tables, YAML and JSON, with secret data redacted. */
import { stringify } from 'yaml';
import type { StoredRecord } from '../desired/store.js';
import { SENSITIVE_KINDS } from '../resources/kinds/index.js';
import { toManifest, type Resource } from '../resources/resource.js';

export const OUTPUT_FORMATS = ['table', 'yaml', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const REDACTED = '<redacted>';

/** The manifest form with every secret value replaced, so `get` never prints secret data. */
export function printableManifest(resource: Resource): Record<string, unknown> {
  const manifest = toManifest(resource);
  if (!SENSITIVE_KINDS.has(resource.kind)) return manifest;
  return { ...manifest, spec: { ...resource.spec, data: REDACTED } };
}

export function renderYaml(resources: readonly Resource[]): string {
  return resources.map((r) => stringify(printableManifest(r), { lineWidth: 0 })).join('---\n');
}

export function renderJson(resources: readonly Resource[], single: boolean): string {
  const manifests = resources.map(printableManifest);
  return JSON.stringify(single ? manifests[0] : { items: manifests }, null, 2);
}

/** A plain-text table with left-aligned columns, like kubectl's. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** A one-line summary of the fields people look for first, per kind. */
export function summarise(resource: Resource): string {
  switch (resource.kind) {
    case 'Service': {
      const mode = resource.spec.mode === 'global' ? 'global' : `replicas=${resource.spec.replicas ?? 1}`;
      return `image=${resource.spec.image} ${mode}`;
    }
    case 'Container':
      return `image=${resource.spec.image} state=${resource.spec.state ?? 'running'}`;
    case 'Network':
      return `driver=${resource.spec.driver ?? 'overlay'} attachable=${resource.spec.attachable ?? false}`;
    case 'Volume':
      return `driver=${resource.spec.driver ?? 'local'} reclaim=${resource.spec.reclaimPolicy ?? 'Retain'}`;
    case 'Config':
      return `bytes=${Buffer.byteLength(resource.spec.data ?? '')}`;
    case 'Secret':
      return 'data=<redacted>';
    case 'HomeFolders':
      return `root=${resource.spec.root} naming=${resource.spec.naming ?? 'plain'} quota=${resource.spec.quota?.driver ?? 'none'}`;
    case 'User':
      return [
        resource.spec.email && `email=${resource.spec.email}`,
        resource.spec.quota !== undefined && `quota=${resource.spec.quota}`,
      ]
        .filter(Boolean)
        .join(' ');
  }
}

export function recordRow(record: StoredRecord): string[] {
  if (record.ok)
    return [record.resource.kind, record.resource.metadata.name, 'Valid', summarise(record.resource)];
  const first = record.issues[0];
  const more = record.issues.length > 1 ? ` (+${record.issues.length - 1} more)` : '';
  return [record.kind, record.name, 'Invalid', first ? `${first.path}: ${first.message}${more}` : ''];
}

export function describeIssues(record: Extract<StoredRecord, { ok: false }>): string {
  return [
    `${record.kind}/${record.name} is invalid:`,
    ...record.issues.map((i) => `  ${i.path}: ${i.message}`),
  ].join('\n');
}

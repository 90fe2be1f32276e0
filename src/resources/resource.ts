/**
 * The typed resource model: what a manifest document or a Redis record becomes once validated,
 * and the one function that validates it.
 */
import { z } from 'zod';
import type { FieldIssue } from '../errors.js';
import { metadataSchema, type Metadata } from './common.js';
import { API_VERSION } from './metadata.js';
import { KIND_DEFINITIONS, KINDS, isKind, type Kind, type SpecOf } from './kinds/index.js';

export type Resource = {
  [K in Kind]: { readonly kind: K; readonly metadata: Metadata; readonly spec: SpecOf<K> };
}[Kind];

export type ResourceOf<K extends Kind> = Extract<Resource, { kind: K }>;

/** `Kind/name`: the key the work queue and logs use. */
export type ResourceRef = `${Kind}/${string}`;

export function refOf(resource: { kind: Kind; metadata: { name: string } }): ResourceRef {
  return `${resource.kind}/${resource.metadata.name}`;
}

export type Validation = { ok: true; resource: Resource } | { ok: false; issues: FieldIssue[] };

/** Turns zod's issues into dotted field paths under a prefix, e.g. `spec.replicas`. */
export function toFieldIssues(error: z.ZodError, prefix: readonly (string | number)[] = []): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: formatPath([...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))]),
    // zod reports a refused record key as "Invalid key in record"; the key schema's own words say why.
    message:
      issue.code === 'invalid_key' && issue.issues.length > 0
        ? issue.issues.map((inner) => inner.message).join('; ')
        : issue.message,
  }));
}

export function formatPath(path: readonly (string | number)[]): string {
  return path.reduce<string>((acc, part) => {
    if (typeof part === 'number') return `${acc}[${part}]`;
    return acc === '' ? part : `${acc}.${part}`;
  }, '');
}

/**
 * Validates an untrusted object shaped like a manifest document. Every failing field is
 * reported, with paths relative to the document (`kind`, `metadata.name`, `spec.replicas`).
 */
export function validateResource(input: unknown): Validation {
  const envelope = z
    .looseObject({
      apiVersion: z.literal(API_VERSION, { error: `must be "${API_VERSION}"` }),
      kind: z.string({ error: 'is required' }),
      // Optional here so each is checked below with its own message; a document may leave out `spec`.
      metadata: z.unknown().optional(),
      spec: z.unknown().optional(),
    })
    .safeParse(input);
  if (!envelope.success) return { ok: false, issues: toFieldIssues(envelope.error) };

  const { kind, metadata, spec } = envelope.data;
  const issues: FieldIssue[] = [];
  const extra = Object.keys(envelope.data).filter(
    (k) => !['apiVersion', 'kind', 'metadata', 'spec'].includes(k),
  );
  for (const key of extra) issues.push({ path: key, message: 'unknown top-level field' });
  if (!isKind(kind)) {
    return {
      ok: false,
      issues: [{ path: 'kind', message: `unknown kind "${kind}"; expected one of ${KINDS.join(', ')}` }],
    };
  }
  const definition = KIND_DEFINITIONS[kind];

  const parsedMetadata = metadataSchema.safeParse(metadata);
  if (!parsedMetadata.success) issues.push(...toFieldIssues(parsedMetadata.error, ['metadata']));
  else {
    const name = definition.name.safeParse(parsedMetadata.data.name);
    if (!name.success) issues.push(...toFieldIssues(name.error, ['metadata', 'name']));
  }

  const parsedSpec = definition.spec.safeParse(spec ?? {});
  if (!parsedSpec.success) issues.push(...toFieldIssues(parsedSpec.error, ['spec']));

  if (issues.length > 0 || !parsedMetadata.success || !parsedSpec.success) return { ok: false, issues };
  // The registry pairs each kind with its own spec schema, so this pairing is sound.
  const resource = { kind, metadata: parsedMetadata.data, spec: parsedSpec.data } as Resource;
  return { ok: true, resource };
}

/** The manifest document form of a resource, as `get -o yaml` prints and `apply` reads. */
export function toManifest(resource: Resource): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: resource.kind, metadata: resource.metadata, spec: resource.spec };
}

/**
 * Reading manifests: files, folders or stdin holding multi-document YAML or JSON, parsed with
 * safety limits, validated per document, with every error pinned to `file:line`.
 * Config and Secret `file` references are read here, at apply time, into `data`.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import { ManifestReadError, type FieldIssue } from '../errors.js';
import { MAX_PAYLOAD_BYTES } from './kinds/payload.js';
import { refOf, validateResource, type Resource } from './resource.js';

/** Larger manifest files are refused: a deployment's manifests are kilobytes. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Caps YAML alias expansion, which defeats "billion laughs" documents. */
export const MAX_ALIAS_COUNT = 100;

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface LoadedResource {
  readonly resource: Resource;
  /** `file:line` of the document. */
  readonly location: string;
}

export interface ManifestSet {
  readonly resources: readonly LoadedResource[];
  /** Every problem found, each with its `file:line`. Empty when the set is valid. */
  readonly issues: readonly FieldIssue[];
}

export interface LoadOptions {
  /** Descend into sub-folders, as kubectl's `-R`. */
  readonly recursive?: boolean;
  /** Where `-` reads from. */
  readonly stdin?: () => Promise<string>;
}

/** Loads every manifest under the given paths (`-` is stdin). Never throws for bad content, only for unreadable paths. */
export async function loadManifests(
  paths: readonly string[],
  options: LoadOptions = {},
): Promise<ManifestSet> {
  const resources: LoadedResource[] = [];
  const issues: FieldIssue[] = [];
  for (const source of paths) {
    const files = source === '-' ? ['-'] : await manifestFiles(source, options.recursive ?? false);
    for (const file of files) {
      const text = file === '-' ? await (options.stdin ?? readStdin)() : await readManifestFile(file);
      const parsed = await parseManifestText(
        text,
        file === '-' ? '<stdin>' : file,
        file === '-' ? process.cwd() : path.dirname(file),
      );
      resources.push(...parsed.resources);
      issues.push(...parsed.issues);
    }
  }
  issues.push(...duplicateIssues(resources));
  return { resources, issues };
}

/**
 * Parses and validates one manifest text. `baseDir` resolves Config and Secret `file` references.
 * Exported for callers that hold text rather than files (the users API, tests of parser limits).
 */
export async function parseManifestText(
  text: string,
  sourceName: string,
  baseDir: string,
): Promise<ManifestSet> {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) {
    return {
      resources: [],
      issues: [{ path: '', message: `larger than ${MAX_MANIFEST_BYTES} bytes`, location: sourceName }],
    };
  }
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (!Array.isArray(documents)) {
    // An empty stream parses to an EmptyStream, which holds no documents.
    return { resources: [], issues: [] };
  }
  const at = (offset: number | undefined): string =>
    offset === undefined ? sourceName : `${sourceName}:${lineCounter.linePos(offset).line}`;

  const resources: LoadedResource[] = [];
  const issues: FieldIssue[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) {
      for (const error of document.errors) {
        issues.push({
          path: '',
          message: error.message.split('\n')[0] ?? error.message,
          location: at(error.pos[0]),
        });
      }
      continue;
    }
    if (document.contents === null) continue;
    const documentLocation = at(document.contents.range?.[0]);
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (error) {
      issues.push({
        path: '',
        message: error instanceof Error ? error.message : String(error),
        location: documentLocation,
      });
      continue;
    }
    const resolved = await resolvePayloadFile(value, baseDir);
    if (resolved.issue) {
      issues.push({ ...resolved.issue, location: locate(document, resolved.issue.path, at) });
      continue;
    }
    const validation = validateResource(resolved.value);
    if (validation.ok) {
      resources.push({ resource: validation.resource, location: documentLocation });
    } else {
      for (const issue of validation.issues)
        issues.push({ ...issue, location: locate(document, issue.path, at) });
    }
  }
  return { resources, issues };
}

/** The `file:line` of the deepest node along a dotted path that exists in the document. */
function locate(document: Document, dottedPath: string, at: (offset: number | undefined) => string): string {
  const segments = splitPath(dottedPath);
  for (let length = segments.length; length >= 0; length -= 1) {
    const node: unknown = document.getIn(segments.slice(0, length), true);
    if (node && typeof node === 'object' && 'range' in node) {
      const range = (node as { range?: [number, number, number] }).range;
      if (range) return at(range[0]);
    }
  }
  return at(document.contents?.range?.[0]);
}

function splitPath(dottedPath: string): (string | number)[] {
  if (dottedPath === '') return [];
  const segments: (string | number)[] = [];
  for (const part of dottedPath.split('.')) {
    const match = /^([^[]*)((?:\[\d+\])*)$/.exec(part);
    if (!match) {
      segments.push(part);
      continue;
    }
    if (match[1]) segments.push(match[1]);
    for (const index of (match[2] ?? '').matchAll(/\[(\d+)\]/g)) segments.push(Number(index[1]));
  }
  return segments;
}

/** Reads a Config or Secret's `spec.file` into `spec.data`; other documents pass through unchanged. */
async function resolvePayloadFile(
  value: unknown,
  baseDir: string,
): Promise<{ value: unknown; issue?: undefined } | { value?: undefined; issue: FieldIssue }> {
  if (!isRecord(value) || (value.kind !== 'Config' && value.kind !== 'Secret')) return { value };
  const spec = value.spec;
  if (!isRecord(spec) || typeof spec.file !== 'string') return { value };
  if (spec.data !== undefined) return { value };
  const filePath = path.resolve(baseDir, spec.file);
  try {
    const info = await stat(filePath);
    if (!info.isFile())
      return { issue: { path: 'spec.file', message: `${spec.file} is not a regular file` } };
    if (info.size > MAX_PAYLOAD_BYTES) {
      return { issue: { path: 'spec.file', message: `${spec.file} is larger than 500 KiB (Swarm limit)` } };
    }
    const data = await readFile(filePath, 'utf8');
    const { file: _file, ...rest } = spec;
    return { value: { ...value, spec: { ...rest, data } } };
  } catch (error) {
    return { issue: { path: 'spec.file', message: `cannot read ${spec.file}: ${errnoText(error)}` } };
  }
}

function duplicateIssues(resources: readonly LoadedResource[]): FieldIssue[] {
  const seen = new Map<string, string>();
  const issues: FieldIssue[] = [];
  for (const { resource, location } of resources) {
    const ref = refOf(resource);
    const first = seen.get(ref);
    if (first === undefined) seen.set(ref, location);
    else
      issues.push({
        path: 'metadata.name',
        message: `${ref} is defined twice (first at ${first})`,
        location,
      });
  }
  return issues;
}

async function manifestFiles(source: string, recursive: boolean): Promise<string[]> {
  let info;
  try {
    info = await stat(source);
  } catch (error) {
    throw new ManifestReadError(source, errnoText(error));
  }
  if (info.isFile()) return [source];
  if (!info.isDirectory()) throw new ManifestReadError(source, 'is neither a file nor a folder');
  const entries = await readdir(source, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(source, entry.name);
    if (entry.isDirectory() && recursive) files.push(...(await manifestFiles(full, true)));
    else if (
      entry.isFile() &&
      MANIFEST_EXTENSIONS.has(path.extname(entry.name)) &&
      !entry.name.endsWith('.schema.json')
    ) {
      files.push(full);
    }
  }
  return files;
}

async function readManifestFile(file: string): Promise<string> {
  try {
    const info = await stat(file);
    if (info.size > MAX_MANIFEST_BYTES)
      throw new ManifestReadError(file, `larger than ${MAX_MANIFEST_BYTES} bytes`);
    return await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof ManifestReadError) throw error;
    throw new ManifestReadError(file, errnoText(error));
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_MANIFEST_BYTES)
      throw new ManifestReadError('<stdin>', `larger than ${MAX_MANIFEST_BYTES} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errnoText(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error && error.code === 'ENOENT')
    return 'no such file or folder';
  if (error && typeof error === 'object' && 'code' in error && error.code === 'EACCES')
    return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

/**
 * Loads the engine fixtures under test/fixtures (see its README): real inspect output, the
 * manifests the round-trip objects were made from, and the context they were made with.
 */
import { readFileSync } from 'node:fs';
import type { ContainerInspectInfo, NetworkInspectInfo, Service, VolumeInspectInfo } from 'dockerode';
import type { ReconcileContext, RealisedPayload } from '../../../src/reconcile/index.js';
import type { ObservedPayload } from '../../../src/reconcile/payload.js';
import type { Kind } from '../../../src/resources/kinds/index.js';
import { validateResource, type Resource, type ResourceOf } from '../../../src/resources/resource.js';

const ROOT = new URL('../../fixtures/', import.meta.url);

export function readFixture(path: string): unknown {
  return JSON.parse(readFileSync(new URL(path, ROOT), 'utf8')) as unknown;
}

/** `docker … inspect` prints an array; every fixture made by the CLI holds exactly one object. */
function first<T>(path: string): T {
  const value = readFixture(`observed/${path}`);
  return (Array.isArray(value) ? value[0] : value) as T;
}

export const observedService = (file: string): Service => first<Service>(file);
export const observedNetwork = (file: string): NetworkInspectInfo => first<NetworkInspectInfo>(file);
export const observedVolume = (file: string): VolumeInspectInfo => first<VolumeInspectInfo>(file);
export const observedContainer = (file: string): ContainerInspectInfo => first<ContainerInspectInfo>(file);
export const observedPayload = (file: string): ObservedPayload => first<ObservedPayload>(file);

export function manifests(file: 'roundtrip.json' | 'adopt.json'): Resource[] {
  const documents = readFixture(`desired/${file}`) as unknown[];
  return documents.map((document) => {
    const result = validateResource(document);
    if (!result.ok) throw new Error(`fixture ${file} is invalid: ${JSON.stringify(result.issues)}`);
    return result.resource;
  });
}

export function manifest<K extends Kind>(
  file: 'roundtrip.json' | 'adopt.json',
  kind: K,
  name: string,
): ResourceOf<K> {
  const found = manifests(file).find((r) => r.kind === kind && r.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind}/${name} in ${file}`);
  return found as ResourceOf<K>;
}

/** A manifest document validated as a resource; for cases built inline. */
export function resource<K extends Kind>(
  kind: K,
  document: { metadata: object; spec: object },
): ResourceOf<K> {
  const result = validateResource({ apiVersion: 'swarmkeeper/v1', kind, ...document });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.resource as ResourceOf<K>;
}

/** The context (network IDs, realised config and secret names) the round-trip objects were created with. */
export function roundtripContext(): ReconcileContext {
  const raw = readFixture('desired/roundtrip-context.json') as {
    networks: Record<string, string>;
    realisedConfigs: Record<string, RealisedPayload>;
    realisedSecrets: Record<string, RealisedPayload>;
  };
  return {
    networks: new Map(Object.entries(raw.networks)),
    realisedConfigs: new Map(Object.entries(raw.realisedConfigs)),
    realisedSecrets: new Map(Object.entries(raw.realisedSecrets)),
  };
}

/** A deep copy to edit, so a case can simulate what the engine here cannot produce. */
export function copy<T>(value: T): T {
  return structuredClone(value);
}

/**
 * `swarmkeeper export`: reads the live Swarm once (one snapshot, one inspect per plain container)
 * and the user folders of an export, and turns what it finds into manifests that adopt it.
 *
 * Skipped: objects swarmkeeper already manages (`io.swarmkeeper.managed=true`), Docker's own
 * networks, Swarm task containers (they belong to their service), anonymous volumes, and the
 * hub's per-user notebook services (`jupyter-…`; managing them would keep sessions alive that the
 * hub means to stop) unless named exactly with `--names`. Configs and secrets a chosen service
 * mounts are exported with it, whatever the filters say, or the service would wait for them.
 */
import type { ObservedReader, ObservedSnapshot } from '../observed/reader.js';
import { getIn, payloadRefSet } from '../reconcile/normalise.js';
import { ANNOTATIONS, API_VERSION, LABELS } from '../resources/metadata.js';
import { validateResource, type Resource, type ResourceOf } from '../resources/resource.js';
import { exportHomes, type HomesExportOptions } from './homes.js';
import type { ImageInspector } from './images.js';
import {
  BUILTIN_NETWORK_NAMES,
  configManifest,
  containerManifest,
  isTaskContainer,
  networkManifest,
  serviceManifest,
  volumeManifest,
  userLabels,
  type Translation,
} from './swarm.js';

/** `key=value` (the label has that value) or `key` (the label is there). */
export interface LabelSelector {
  readonly key: string;
  readonly value?: string;
}

export interface ExportOptions {
  /** Every selector must match an object's labels. */
  readonly selector?: readonly LabelSelector[];
  /** Names or `*` patterns; absent, every name. */
  readonly names?: readonly string[];
  readonly homes?: HomesExportOptions;
}

export interface Skipped {
  readonly kind: string;
  readonly name: string;
  readonly reason: string;
}

export interface ExportResult {
  /** In dependency order (networks, volumes, configs, secrets, home folders, services, containers, users). */
  readonly resources: Resource[];
  /** Settings a manifest cannot carry, folders it cannot name, and the like: one line each. */
  readonly warnings: string[];
  /** Objects that matched the filters but are not exported, and why. */
  readonly skipped: Skipped[];
  /** The snapshot the manifests were made from, for checking them against it. */
  readonly snapshot: ObservedSnapshot;
}

/** The hub's per-user services: the seed's `jupyter-<md5>-1` and dockerspawner's `jupyter-<escaped>`. */
const NOTEBOOK_SERVICE = /^jupyter-/;

export function parseSelector(text: string): LabelSelector {
  const eq = text.indexOf('=');
  const key = (eq < 0 ? text : text.slice(0, eq)).trim();
  if (key === '') throw new RangeError(`selector "${text}" names no label`);
  return eq < 0 ? { key } : { key, value: text.slice(eq + 1) };
}

export function matchesSelector(
  labels: Readonly<Record<string, string>> | null | undefined,
  selector: readonly LabelSelector[],
): boolean {
  return selector.every((s) => {
    const value = labels?.[s.key];
    return s.value === undefined ? value !== undefined : value === s.value;
  });
}

/** A name against `--names` entries: exact, or with `*` standing for any run of characters. */
export function matchesName(name: string, patterns: readonly string[] | undefined): boolean {
  if (patterns === undefined) return true;
  return patterns.some((pattern) => {
    if (!pattern.includes('*')) return pattern === name;
    const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
    return new RegExp(`^${escaped}$`).test(name);
  });
}

export async function exportDeployment(
  reader: ObservedReader,
  images: ImageInspector,
  options: ExportOptions,
): Promise<ExportResult> {
  const snapshot = await reader.snapshot();
  const selector = options.selector ?? [];
  const warnings: string[] = [];
  const skipped: Skipped[] = [];
  const chosen = (name: string, labels: Readonly<Record<string, string>> | null | undefined): boolean =>
    matchesName(name, options.names) && matchesSelector(labels, selector);
  const managed = (labels: Readonly<Record<string, string>> | null | undefined): boolean =>
    labels?.[LABELS.managed] === 'true';
  const take = <K extends 'Network' | 'Volume' | 'Config' | 'Service' | 'Container'>(
    kind: K,
    name: string,
    translation: Translation<K>,
    into: ResourceOf<K>[],
  ): void => {
    if (!translation.ok) {
      skipped.push({ kind, name, reason: translation.reason });
      return;
    }
    into.push(translation.resource);
    for (const warning of translation.warnings) warnings.push(`${kind} ${name}: ${warning}`);
  };

  const networks: ResourceOf<'Network'>[] = [];
  for (const [name, network] of sorted(snapshot.networks)) {
    if (BUILTIN_NETWORK_NAMES.has(name) || network.Ingress === true || !chosen(name, network.Labels))
      continue;
    if (managed(network.Labels)) continue;
    take('Network', name, networkManifest(network), networks);
  }

  const volumes: ResourceOf<'Volume'>[] = [];
  for (const [name, volume] of sorted(snapshot.volumes)) {
    if (!chosen(name, volume.Labels) || managed(volume.Labels)) continue;
    take('Volume', name, volumeManifest(volume), volumes);
  }

  // Services first: they decide which configs and secrets come along.
  const services: ResourceOf<'Service'>[] = [];
  const wantedConfigs = new Set<string>();
  const wantedSecrets = new Set<string>();
  const networkNames = new Map([...snapshot.networks].map(([name, n]) => [n.Id, name]));
  for (const [name, service] of sorted(snapshot.services)) {
    if (!chosen(name, service.labels) || managed(service.labels)) continue;
    if (NOTEBOOK_SERVICE.test(name) && !(options.names ?? []).includes(name)) {
      skipped.push({
        kind: 'Service',
        name,
        reason:
          "looks like a hub-spawned notebook (a user's session); name it exactly with --names to export it",
      });
      continue;
    }
    const container = getIn(service.spec, ['TaskTemplate', 'ContainerSpec']);
    for (const ref of payloadRefSet(getIn(container, ['Configs']), 'Config') ?? [])
      wantedConfigs.add(ref.name);
    for (const ref of payloadRefSet(getIn(container, ['Secrets']), 'Secret') ?? [])
      wantedSecrets.add(ref.name);
    take(
      'Service',
      name,
      serviceManifest(service.spec, {
        networkNames,
        configResource: (objectName) => payloadResourceName(snapshot.configs.get(objectName), objectName),
        secretResource: (objectName) => payloadResourceName(snapshot.secrets.get(objectName), objectName),
      }),
      services,
    );
  }

  const configs: ResourceOf<'Config'>[] = [];
  for (const [name, config] of sorted(snapshot.configs)) {
    const labels = config.Spec?.Labels;
    const needed = wantedConfigs.has(name);
    if (!needed && (!chosen(name, labels) || managed(labels))) continue;
    if (managed(labels)) {
      warnings.push(
        `Config ${name}: mounted by an exported service but managed by swarmkeeper already; not exported`,
      );
      continue;
    }
    if (needed && !chosen(name, labels))
      warnings.push(`Config ${name}: exported because an exported service mounts it`);
    take('Config', name, configManifest(config), configs);
  }

  const secrets: Resource[] = [];
  for (const [name, secret] of sorted(snapshot.secrets)) {
    const labels = secret.Spec?.Labels;
    const needed = wantedSecrets.has(name);
    if (!needed && (!chosen(name, labels) || managed(labels))) continue;
    if (managed(labels)) continue;
    // The engine never hands out secret data: the manifest points at a file the operator fills.
    const result = validateResource({
      apiVersion: API_VERSION,
      kind: 'Secret',
      metadata: {
        name,
        ...(userLabels(labels) && { labels: userLabels(labels) }),
        annotations: { [ANNOTATIONS.adopt]: 'true' },
      },
      spec: { file: `secrets/${name}` },
    });
    if (!result.ok) {
      skipped.push({ kind: 'Secret', name, reason: result.issues.map((i) => i.message).join('; ') });
      continue;
    }
    secrets.push(result.resource);
    warnings.push(
      `Secret ${name}: Docker never returns secret data; put its content in secrets/${name} beside the manifest before applying`,
    );
  }

  const containers: ResourceOf<'Container'>[] = [];
  for (const [name, listed] of sorted(snapshot.containers)) {
    if (isTaskContainer(listed.Labels) || !chosen(name, listed.Labels) || managed(listed.Labels)) continue;
    const detail = await reader.inspectContainer(name);
    if (detail === undefined) continue; // removed since the snapshot
    take('Container', name, containerManifest(detail, await images(detail.Image)), containers);
  }

  const homes = options.homes ? await exportHomes(options.homes) : { resources: [], warnings: [] };
  warnings.push(...homes.warnings);
  const resources: Resource[] = [
    ...networks,
    ...volumes,
    ...configs,
    ...secrets,
    ...homes.resources.filter((r) => r.kind === 'HomeFolders'),
    ...services,
    ...containers,
    ...homes.resources.filter((r) => r.kind === 'User'),
  ];
  return { resources, warnings, skipped, snapshot };
}

/** A config made by some swarmkeeper carries the resource it realises; any other is its own resource. */
function payloadResourceName(
  observed: { Spec?: { Labels?: Readonly<Record<string, string>> | undefined } | undefined } | undefined,
  objectName: string,
): string {
  return observed?.Spec?.Labels?.[LABELS.resource] ?? objectName;
}

function sorted<V>(map: ReadonlyMap<string, V>): [string, V][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

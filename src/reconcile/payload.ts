/**
 * Config and Secret resources. Swarm configs and secrets are immutable except for their labels
 * (moby/moby #35803), so each content version is its own object named `<name>-<hash8>`; a
 * change of content is a new object and services move to it.
 */
import type { ConfigSpec, SecretSpec } from 'dockerode';
import { InvalidResourceError } from '../errors.js';
import { LABELS } from '../resources/metadata.js';
import type { ResourceOf } from '../resources/resource.js';
import { compareFields, diffLabels, toDiffResult, type DiffOptions, type DiffResult } from './diff.js';
import { base64, fnv1a64, fromBase64 } from './hash.js';

export type PayloadResource = ResourceOf<'Config'> | ResourceOf<'Secret'>;

/**
 * A config or secret as listed or inspected. Structural, so dockerode's `ConfigInfo` and `Secret`
 * both fit. A secret's `Data` is never returned by the engine.
 */
export interface ObservedPayload {
  readonly ID: string;
  readonly Version?: { readonly Index?: number | undefined } | undefined;
  readonly Spec?:
    | {
        readonly Name?: string | undefined;
        readonly Labels?: Readonly<Record<string, string>> | undefined;
        readonly Data?: string | undefined;
      }
    | undefined;
}

/** The content hash of a payload: its `io.swarmkeeper.spec-hash` and the source of its name suffix. */
export function payloadHash(data: string): string {
  return fnv1a64(data);
}

/** `<name>-<first 8 hex digits of the content hash>`; the schema leaves room for the suffix. */
export function realisedPayloadName(name: string, data: string): string {
  return `${name}-${payloadHash(data).slice(0, 8)}`;
}

/** The content of a stored Config or Secret; `apply` turns `file` into `data` before storing. */
export function payloadData(resource: PayloadResource): string {
  const data = resource.spec.data;
  if (data === undefined) {
    throw new InvalidResourceError(`${resource.kind}/${resource.metadata.name}`, [
      { path: 'spec.data', message: 'a stored record must carry data (apply reads file into data)' },
    ]);
  }
  return data;
}

/**
 * Labels of a realised payload: `metadata.labels`, then managed, the content hash as spec-hash,
 * and `io.swarmkeeper.resource` naming the resource, by which all its versions are found.
 */
export function payloadLabels(resource: PayloadResource): Record<string, string> {
  return {
    ...resource.metadata.labels,
    [LABELS.managed]: 'true',
    [LABELS.specHash]: payloadHash(payloadData(resource)),
    [LABELS.resource]: resource.metadata.name,
  };
}

/** The ConfigSpec that creates the current version of a Config resource. */
export function configCreateFor(resource: ResourceOf<'Config'>): ConfigSpec {
  const data = payloadData(resource);
  return {
    Name: realisedPayloadName(resource.metadata.name, data),
    Labels: payloadLabels(resource),
    Data: base64(data),
  };
}

/** The SecretSpec that creates the current version of a Secret resource. */
export function secretCreateFor(resource: ResourceOf<'Secret'>): SecretSpec & { Name: string } {
  const data = payloadData(resource);
  return {
    Name: realisedPayloadName(resource.metadata.name, data),
    Labels: payloadLabels(resource),
    Data: base64(data),
  };
}

/**
 * Drift between the desired version and the observed object of the same realised name. Content
 * is compared by hash only, so secret data never appears in a drift entry: through `Data` when
 * the engine returns it (configs), else through the spec-hash label (secrets).
 */
export function diffPayload(
  desired: ConfigSpec | SecretSpec,
  observed: ObservedPayload,
  options: DiffOptions = {},
): DiffResult {
  const wantHash = desired.Data === undefined ? undefined : fnv1a64(fromBase64(desired.Data));
  const fields = compareFields(
    [
      {
        path: 'spec.data',
        desired: () => wantHash,
        observed: (o: ObservedPayload) =>
          o.Spec?.Data !== undefined
            ? fnv1a64(fromBase64(o.Spec.Data))
            : (o.Spec?.Labels?.[LABELS.specHash] ?? wantHash),
        recreate: true,
      },
    ],
    desired,
    observed,
    options.ignoreFields ?? [],
  );
  return toDiffResult(fields, diffLabels(desired.Labels, observed.Spec?.Labels));
}

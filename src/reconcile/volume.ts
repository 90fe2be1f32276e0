/** Volume resource → VolumeCreateOptions, and the diff against `docker volume inspect`. */
import type { VolumeCreateOptions, VolumeInspectInfo } from 'dockerode';
import { LABELS } from '../resources/metadata.js';
import type { ResourceOf } from '../resources/resource.js';
import { DEFAULT_RECLAIM_POLICY, DEFAULT_VOLUME_DRIVER } from './defaults.js';
import {
  compareFields,
  diffLabels,
  toDiffResult,
  type DiffOptions,
  type DiffResult,
  type FieldRule,
} from './diff.js';
import { optional, stringMap } from './normalise.js';
import { ownedLabels } from './ownership.js';

/** Create options for a Volume. Default: driver `local` (see defaults.ts). `reclaimPolicy` is the controller's, not Docker's. */
export function volumeCreateOptionsFor(resource: ResourceOf<'Volume'>): VolumeCreateOptions {
  const spec = resource.spec;
  const driverOpts =
    spec.driverOpts !== undefined && Object.keys(spec.driverOpts).length > 0 ? spec.driverOpts : undefined;
  return {
    Name: resource.metadata.name,
    Driver: spec.driver ?? DEFAULT_VOLUME_DRIVER,
    ...optional('DriverOpts', driverOpts === undefined ? undefined : { ...driverOpts }),
    Labels: {
      ...ownedLabels(resource),
      [LABELS.reclaimPolicy]: spec.reclaimPolicy ?? DEFAULT_RECLAIM_POLICY,
    },
  };
}

/**
 * Volume drift. The engine never changes the driver or options of an existing volume
 * (docker/cli #1279), so each field difference is a recreate; labels are reported apart.
 */
export function diffVolume(
  desired: VolumeCreateOptions,
  observed: VolumeInspectInfo,
  options: DiffOptions = {},
): DiffResult {
  const rules: FieldRule<VolumeCreateOptions, VolumeInspectInfo>[] = [
    {
      path: 'spec.driver',
      desired: (d) => d.Driver ?? DEFAULT_VOLUME_DRIVER,
      observed: (o) => o.Driver,
      recreate: true,
    },
    {
      path: 'spec.driverOpts',
      desired: (d) => stringMap(d.DriverOpts),
      observed: (o) => stringMap(o.Options),
      recreate: true,
    },
  ];
  const fields = compareFields(rules, desired, observed, options.ignoreFields ?? []);
  return toDiffResult(fields, diffLabels(desired.Labels, observed.Labels));
}

/**
 * Whether a local volume's options mount something that lives elsewhere (`type` nfs or nfs4, or
 * `none` with `o=bind` or `rbind`): removing such a volume deletes no data, so a per-user volume whose
 * options drifted may be removed and created again. Any other local volume (plain, tmpfs, a
 * block device) may hold data of its own and is never removed.
 */
export function mountsElsewhere(options: Readonly<Record<string, string>> | null | undefined): boolean {
  const type = options?.type;
  if (type === 'nfs' || type === 'nfs4') return true;
  const mountOptions = (options?.o ?? '').split(',').map((o) => o.trim());
  return (
    type === 'none' &&
    (mountOptions.includes('bind') || mountOptions.includes('rbind')) &&
    options?.device !== undefined
  );
}

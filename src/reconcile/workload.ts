/** Translation of the pieces Services and Containers share: env, mounts, health checks, capabilities. */
import type { HealthConfig, MountSettings } from 'dockerode';
import type { ServiceSpec as DesiredServiceSpec } from '../resources/kinds/service.js';
import type { Mount } from '../resources/kinds/workload.js';
import { parseBytes, parseDurationNanos } from '../resources/units.js';
import { capabilityName, compact, envList, optional } from './normalise.js';

type Environment = NonNullable<DesiredServiceSpec['env']>;
type Healthcheck = NonNullable<DesiredServiceSpec['healthcheck']>;

/** `KEY=value` entries sorted by name, so a map and a reordered list translate the same. */
export function envEntries(env: Environment | undefined): string[] | undefined {
  if (env === undefined) return undefined;
  const list = Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return envList(list);
}

/** Capabilities in the `CAP_`-prefixed form the engine stores, sorted. */
export function capabilities(list: readonly string[] | undefined): string[] | undefined {
  if (list === undefined || list.length === 0) return undefined;
  return [...new Set(list.map(capabilityName))].sort();
}

export function durationNanos(value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseDurationNanos(value);
}

export function bytes(value: string | number | undefined): number | undefined {
  return value === undefined ? undefined : parseBytes(value);
}

/**
 * An Engine API Mount. Only what the manifest sets is sent: an empty `DriverConfig` or a `false`
 * flag would come back differently shaped on inspect and read as drift.
 *
 * @types/dockerode marks `Source` and every `VolumeOptions`/`TmpfsOptions` member as required;
 * the engine treats all of them as optional, hence the one cast at the end.
 */
export function engineMount(mount: Mount): MountSettings {
  const type = mount.type ?? 'volume';
  const volume = mount.volume;
  const driverConfig =
    volume?.driver === undefined && volume?.driverOpts === undefined
      ? undefined
      : { Name: volume.driver ?? 'local', ...optional('Options', volume.driverOpts) };
  const volumeOptions =
    volume === undefined
      ? undefined
      : compact({
          NoCopy: volume.noCopy === true ? true : undefined,
          Labels: volume.labels,
          DriverConfig: driverConfig,
        });
  const tmpfsOptions =
    mount.tmpfs === undefined
      ? undefined
      : compact({ SizeBytes: bytes(mount.tmpfs.size), Mode: mount.tmpfs.mode });
  const result = {
    Type: type,
    ...optional('Source', mount.source),
    Target: mount.target,
    ...optional('ReadOnly', mount.readOnly === true ? true : undefined),
    ...optional('VolumeOptions', type === 'volume' ? volumeOptions : undefined),
    ...optional(
      'BindOptions',
      type === 'bind' && mount.bind?.propagation !== undefined
        ? { Propagation: mount.bind.propagation }
        : undefined,
    ),
    ...optional('TmpfsOptions', type === 'tmpfs' ? tmpfsOptions : undefined),
  };
  return result as MountSettings;
}

/**
 * A HealthConfig in nanoseconds. A string test is a shell command (`CMD-SHELL`), as in compose;
 * a list is taken as exec form unless it already names its form; `disable` wins over everything.
 */
export function healthConfig(healthcheck: Healthcheck | undefined): HealthConfig | undefined {
  if (healthcheck === undefined) return undefined;
  if (healthcheck.disable === true) return { Test: ['NONE'] };
  const test = healthcheck.test;
  const testList =
    test === undefined
      ? undefined
      : typeof test === 'string'
        ? ['CMD-SHELL', test]
        : ['CMD', 'CMD-SHELL', 'NONE'].includes(test[0] ?? '')
          ? [...test]
          : ['CMD', ...test];
  return compact({
    Test: testList,
    Interval: durationNanos(healthcheck.interval),
    Timeout: durationNanos(healthcheck.timeout),
    StartPeriod: durationNanos(healthcheck.startPeriod),
    Retries: healthcheck.retries,
  });
}

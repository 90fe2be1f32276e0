/** Network resource → NetworkCreateOptions, and the diff against `docker network inspect`. */
import type { NetworkCreateOptions, NetworkInspectInfo } from 'dockerode';
import type { ResourceOf } from '../resources/resource.js';
import { DEFAULT_IPAM_DRIVER, DEFAULT_NETWORK_DRIVER, ENGINE_NETWORK_OPTIONS } from './defaults.js';
import {
  compareFields,
  diffLabels,
  toDiffResult,
  type DiffOptions,
  type DiffResult,
  type FieldRule,
} from './diff.js';
import {
  asArray,
  asRecord,
  compact,
  nonEmptyString,
  optional,
  stringMap,
  unlessDefault,
} from './normalise.js';
import { ownedLabels } from './ownership.js';

/** The overlay driver's option that turns on IPsec between nodes; its value is ignored. */
const ENCRYPTED_OPTION = 'encrypted';

/**
 * Create options for a Network. Default: driver `overlay` (see defaults.ts). `encrypted: true`
 * becomes the driver option `encrypted`, as `docker network create --opt encrypted` does.
 */
export function networkCreateOptionsFor(resource: ResourceOf<'Network'>): NetworkCreateOptions {
  const spec = resource.spec;
  const options: Record<string, string> = { ...spec.driverOpts };
  if (spec.encrypted === true) options[ENCRYPTED_OPTION] = '';
  else if (spec.encrypted === false) delete options[ENCRYPTED_OPTION];
  const ipamConfig = spec.ipam?.config?.map(
    (c) => compact({ Subnet: c.subnet, IPRange: c.ipRange, Gateway: c.gateway }) ?? {},
  );
  const ipam = compact({ Driver: spec.ipam?.driver, Config: ipamConfig?.length ? ipamConfig : undefined });
  const driver = spec.driver ?? DEFAULT_NETWORK_DRIVER;
  return {
    Name: resource.metadata.name,
    // The Swarm refuses a second overlay network of the same name by itself. The engine's own
    // check would also refuse the name while a removed network's local copy waits for its last
    // task to stop, which delays its re-creation by the tasks' stop grace period.
    CheckDuplicate: driver !== 'overlay',
    Driver: driver,
    ...optional('Attachable', spec.attachable),
    ...optional('Internal', spec.internal),
    ...optional('Options', Object.keys(options).length > 0 ? options : undefined),
    ...optional('IPAM', ipam),
    Labels: ownedLabels(resource),
  };
}

function userOptions(
  options: Readonly<Record<string, string>> | null | undefined,
): Record<string, string> | undefined {
  const kept = Object.entries(options ?? {}).filter(
    ([k]) => k !== ENCRYPTED_OPTION && !ENGINE_NETWORK_OPTIONS.has(k),
  );
  return stringMap(Object.fromEntries(kept));
}

/**
 * Network drift. Docker cannot update a network (moby/moby #27598), so every field difference is
 * also a recreate; label differences are reported apart and never force one.
 *
 * IPAM is compared only as far as the manifest states it: Swarm allocates a subnet and gateway
 * when none is asked for, and those must not read as drift.
 */
export function diffNetwork(
  desired: NetworkCreateOptions,
  observed: NetworkInspectInfo,
  options: DiffOptions = {},
): DiffResult {
  const wantedConfig = asArray(desired.IPAM?.Config).map((c) => asRecord(c) ?? {});
  type Rule = FieldRule<NetworkCreateOptions, NetworkInspectInfo>;
  const compared: Rule[] = [
    { path: 'spec.driver', desired: (d) => d.Driver ?? DEFAULT_NETWORK_DRIVER, observed: (o) => o.Driver },
    {
      path: 'spec.attachable',
      desired: (d) => d.Attachable === true,
      observed: (o) => o.Attachable === true,
    },
    { path: 'spec.internal', desired: (d) => d.Internal === true, observed: (o) => o.Internal === true },
    {
      path: 'spec.encrypted',
      desired: (d) => d.Options?.[ENCRYPTED_OPTION] !== undefined,
      observed: (o) => o.Options?.[ENCRYPTED_OPTION] !== undefined,
    },
    {
      path: 'spec.driverOpts',
      desired: (d) => userOptions(d.Options),
      observed: (o) => userOptions(o.Options),
    },
    {
      path: 'spec.ipam.driver',
      desired: (d) => unlessDefault(nonEmptyString(d.IPAM?.Driver), DEFAULT_IPAM_DRIVER),
      observed: (o) => unlessDefault(nonEmptyString(o.IPAM?.Driver), DEFAULT_IPAM_DRIVER),
    },
    {
      path: 'spec.ipam.config',
      when: () => wantedConfig.length > 0,
      desired: () => wantedConfig,
      // Each observed pool is cut down to the members the manifest names, so allocated extras pass.
      observed: (o) =>
        asArray(o.IPAM?.Config).map((raw, i) => {
          const have = asRecord(raw) ?? {};
          const want = wantedConfig[i] ?? {};
          return Object.fromEntries(Object.keys(want).map((k) => [k, have[k]]));
        }),
    },
  ];
  const rules = compared.map((rule): Rule => ({ ...rule, recreate: true }));
  const fields = compareFields(rules, desired, observed, options.ignoreFields ?? []);
  return toDiffResult(fields, diffLabels(desired.Labels, observed.Labels));
}

import type { NetworkInspectInfo, VolumeInspectInfo } from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  networkCreateOptionsFor,
  planNetwork,
  planVolume,
  volumeCreateOptionsFor,
  type NetworkAction,
  type VolumeAction,
} from '../../../src/reconcile/index.js';
import { LABELS } from '../../../src/resources/metadata.js';
import type { ResourceOf } from '../../../src/resources/resource.js';
import { copy, manifest, observedNetwork, observedVolume, resource } from './fixtures.js';

const ADOPT = { 'swarmkeeper/adopt': 'true' };
const rtNet = manifest('roundtrip.json', 'Network', 'skfix-rt-net');
const rtBridge = manifest('roundtrip.json', 'Network', 'skfix-rt-bridge');
const rtVol = manifest('roundtrip.json', 'Volume', 'skfix-rt-vol');

function network(
  name: string,
  spec: ResourceOf<'Network'>['spec'],
  annotations: Record<string, string> = ADOPT,
): ResourceOf<'Network'> {
  return resource('Network', { metadata: { name, annotations }, spec });
}

function volume(
  name: string,
  spec: ResourceOf<'Volume'>['spec'],
  annotations: Record<string, string> = ADOPT,
): ResourceOf<'Volume'> {
  return resource('Volume', { metadata: { name, annotations }, spec });
}

interface Case<A, R, O> {
  readonly name: string;
  readonly desired: R;
  readonly observed: O | undefined;
  readonly type: A;
  readonly drift?: readonly string[];
  readonly dataLoss?: boolean;
}

const networkCases: Case<NetworkAction['type'], ResourceOf<'Network'>, NetworkInspectInfo>[] = [
  { name: 'a missing network is created', desired: rtNet, observed: undefined, type: 'create' },
  {
    name: 'the round-tripped overlay has no drift',
    desired: rtNet,
    observed: observedNetwork('network-roundtrip.json'),
    type: 'none',
    drift: [],
  },
  {
    name: 'the round-tripped internal bridge with a subnet has no drift',
    desired: rtBridge,
    observed: observedNetwork('network-roundtrip-bridge.json'),
    type: 'none',
    drift: [],
  },
  {
    // A network can lose `attachable` when a node leaves and rejoins (moby/moby #27124); this
    // engine will not do that on demand, so the copy is edited.
    name: 'a network that lost attachable must be recreated',
    desired: rtNet,
    observed: ((): NetworkInspectInfo => {
      const n = copy(observedNetwork('network-roundtrip.json'));
      n.Attachable = false;
      return n;
    })(),
    type: 'recreate',
    drift: ['spec.attachable'],
  },
  {
    name: 'label-only drift never recreates a network',
    desired: { ...rtNet, metadata: { ...rtNet.metadata, labels: { app: 'renamed' } } },
    observed: observedNetwork('network-roundtrip.json'),
    type: 'none',
    drift: ['metadata.labels["app"]'],
  },
  {
    name: 'a network swarmkeeper did not create is a conflict',
    desired: network('skfix-net', {}, {}),
    observed: observedNetwork('network-net.json'),
    type: 'conflict',
  },
  {
    // The seed's jupyterhub network: first plain overlay, later wanted attachable.
    name: 'adopting the seed network and asking for attachable recreates it',
    desired: network('skfix-net', { attachable: true }),
    observed: observedNetwork('network-net.json'),
    type: 'recreate',
    drift: ['spec.attachable'],
  },
  {
    name: 'adopting a matching network leaves it, reporting the labels Docker cannot add',
    desired: network('skfix-net-rich', {
      attachable: true,
      internal: true,
      encrypted: true,
      ipam: { config: [{ subnet: '10.251.0.0/24' }] },
    }),
    observed: observedNetwork('network-net-rich.json'),
    type: 'none',
    drift: [
      `metadata.labels[${JSON.stringify(LABELS.managed)}]`,
      `metadata.labels[${JSON.stringify(LABELS.specHash)}]`,
    ],
  },
  {
    name: 'encryption is immutable',
    desired: network('skfix-net', { encrypted: true }),
    observed: observedNetwork('network-net.json'),
    type: 'recreate',
    drift: ['spec.encrypted'],
  },
  {
    name: 'a different subnet is immutable; the allocated gateway is not compared',
    desired: network('skfix-net-rich', {
      attachable: true,
      internal: true,
      encrypted: true,
      ipam: { config: [{ subnet: '10.99.0.0/24' }] },
    }),
    observed: observedNetwork('network-net-rich.json'),
    type: 'recreate',
    drift: ['spec.ipam.config'],
  },
  {
    name: 'the driver is immutable',
    desired: network('skfix-bridge', {}),
    observed: observedNetwork('network-bridge.json'),
    type: 'recreate',
    drift: ['spec.driver'],
  },
];

describe('planNetwork against real inspect output', () => {
  it.each(networkCases)('$name', (c) => {
    const [action, ...rest] = planNetwork(c.desired, c.observed);
    expect(rest).toEqual([]);
    expect(action?.type).toBe(c.type);
    if (c.drift !== undefined && action !== undefined && 'drift' in action) {
      const paths = action.drift.map((d) => d.path);
      const fields = action.type === 'recreate' ? paths.filter((p) => p.startsWith('spec.')) : paths;
      expect(fields.sort()).toEqual([...c.drift].sort());
    }
  });
});

const volumeCases: Case<VolumeAction['type'], ResourceOf<'Volume'>, VolumeInspectInfo>[] = [
  { name: 'a missing volume is created', desired: rtVol, observed: undefined, type: 'create' },
  {
    name: 'the round-tripped volume has no drift',
    desired: rtVol,
    observed: observedVolume('volume-roundtrip.json'),
    type: 'none',
    drift: [],
  },
  {
    name: 'driver option drift recreates; the data is behind a device option',
    desired: { ...rtVol, spec: { driverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=2m' } } },
    observed: observedVolume('volume-roundtrip.json'),
    type: 'recreate',
    drift: ['spec.driverOpts'],
    dataLoss: false,
  },
  {
    name: 'adopting the seed NFS volume as it is leaves it',
    desired: volume('skfix-nfsvol', {
      driver: 'local',
      driverOpts: { type: 'nfs4', o: 'addr=127.0.0.1,rw', device: ':/var/nfs' },
    }),
    observed: observedVolume('volume-nfsvol.json'),
    type: 'none',
  },
  {
    name: 'a new NFS server address recreates the NFS volume',
    desired: volume('skfix-nfsvol', {
      driverOpts: { type: 'nfs4', o: 'addr=10.0.0.9,rw', device: ':/var/nfs' },
    }),
    observed: observedVolume('volume-nfsvol.json'),
    type: 'recreate',
    drift: ['spec.driverOpts'],
    dataLoss: false,
  },
  {
    name: 'recreating a plain local volume is flagged as losing data',
    desired: volume('skfix-vol', { driverOpts: { type: 'tmpfs', device: 'tmpfs' } }),
    observed: observedVolume('volume-vol.json'),
    type: 'recreate',
    drift: ['spec.driverOpts'],
    dataLoss: true,
  },
  {
    name: 'a volume swarmkeeper did not create is a conflict',
    desired: volume('skfix-vol', {}, {}),
    observed: observedVolume('volume-vol.json'),
    type: 'conflict',
  },
];

describe('planVolume against real inspect output', () => {
  it.each(volumeCases)('$name', (c) => {
    const [action, ...rest] = planVolume(c.desired, c.observed);
    expect(rest).toEqual([]);
    expect(action?.type).toBe(c.type);
    if (c.drift !== undefined && action !== undefined && 'drift' in action) {
      expect(action.drift.map((d) => d.path).filter((p) => p.startsWith('spec.'))).toEqual(c.drift);
    }
    if (c.dataLoss !== undefined && action?.type === 'recreate') expect(action.dataLoss).toBe(c.dataLoss);
  });
});

describe('network and volume translation', () => {
  it('defaults a network to overlay and turns encrypted into the driver option', () => {
    const options = networkCreateOptionsFor(network('n1', { encrypted: true, driverOpts: { mtu: '1400' } }));
    expect(options).toMatchObject({ Name: 'n1', Driver: 'overlay', Options: { mtu: '1400', encrypted: '' } });
    expect(options.Labels).toMatchObject({ [LABELS.managed]: 'true' });
  });

  it('defaults a volume to the local driver', () => {
    expect(volumeCreateOptionsFor(volume('v1', {}))).toMatchObject({ Name: 'v1', Driver: 'local' });
  });
});

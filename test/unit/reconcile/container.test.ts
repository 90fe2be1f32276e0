import type { ContainerInspectInfo } from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  containerBlueprintFor,
  containerCreateOptionsFor,
  emptyContext,
  planContainer,
  type ContainerAction,
} from '../../../src/reconcile/index.js';
import { LABELS } from '../../../src/resources/metadata.js';
import type { ResourceOf } from '../../../src/resources/resource.js';
import { copy, manifest, observedContainer, readFixture, resource, roundtripContext } from './fixtures.js';

const context = roundtripContext();
const nginx = manifest('roundtrip.json', 'Container', 'skfix-rt-nginx');
const roundtrip = observedContainer('container-roundtrip.json');

function withSpec(patch: Partial<ResourceOf<'Container'>['spec']>): ResourceOf<'Container'> {
  return { ...nginx, spec: { ...nginx.spec, ...patch } };
}

/** The managed round-trip container in the State a real `docker stop` left the CLI fixture in. */
function stopped(): ContainerInspectInfo {
  const info = copy(roundtrip);
  info.State = copy(observedContainer('container-stopped.json').State);
  return info;
}

/** The seed's Let's Encrypt container as the CLI fixture was run, for adoption. */
const cliNginx = resource('Container', {
  metadata: { name: 'skfix-nginx', annotations: { 'swarmkeeper/adopt': 'true' } },
  spec: {
    image: 'local/busybox:1',
    command: ['sleep', '3600'],
    env: { EMAIL: 'ops@example.org', URL: 'example.org' },
    networks: ['skfix-net-attachable'],
    ports: [
      { target: 443, published: 18443 },
      { target: 80, published: 18081 },
    ],
    mounts: [
      { source: 'skfix-vol', target: '/config' },
      { type: 'bind', source: '/tmp', target: '/x', readOnly: true },
    ],
    capAdd: ['NET_ADMIN'],
    restart: 'unless-stopped',
  },
});
const cliContext = {
  ...emptyContext(),
  networks: new Map([['skfix-net-attachable', 'xpx6thg6lwmj5zop5749b4e0k']]),
};

interface Case {
  readonly name: string;
  readonly desired: ResourceOf<'Container'>;
  readonly observed: ContainerInspectInfo | undefined;
  readonly context?: typeof context;
  readonly type: ContainerAction['type'];
  readonly drift?: readonly string[];
}

const cases: Case[] = [
  { name: 'a missing container is created', desired: nginx, observed: undefined, type: 'create' },
  { name: 'the round-tripped container has no drift', desired: nginx, observed: roundtrip, type: 'none' },
  {
    name: 'a stopped container that should run is started',
    desired: nginx,
    observed: stopped(),
    type: 'start',
  },
  {
    name: 'a running container that should be stopped is stopped',
    desired: withSpec({ state: 'stopped' }),
    observed: roundtrip,
    type: 'stop',
  },
  {
    name: 'a stopped container that should stay stopped is left',
    desired: withSpec({ state: 'stopped' }),
    observed: stopped(),
    type: 'none',
  },
  {
    name: 'changed env recreates the container',
    desired: withSpec({ env: { URL: 'example.net', EMAIL: 'ops@example.org' } }),
    observed: roundtrip,
    type: 'recreate',
    drift: ['spec.env'],
  },
  {
    name: 'a changed port recreates the container',
    desired: withSpec({ ports: [{ target: 443, published: 18444 }] }),
    observed: roundtrip,
    type: 'recreate',
    drift: ['spec.ports'],
  },
  {
    name: 'a removed env var is caught by the spec hash, not hidden by the image env merge',
    desired: withSpec({ env: { EMAIL: 'ops@example.org' } }),
    observed: roundtrip,
    type: 'recreate',
    drift: [],
  },
  {
    name: 'a container swarmkeeper did not create is a conflict',
    desired: { ...cliNginx, metadata: { name: 'skfix-nginx' } },
    observed: observedContainer('container-running.json'),
    context: cliContext,
    type: 'conflict',
  },
  {
    name: 'adopting a matching container leaves it running without labels (Docker cannot relabel one)',
    desired: cliNginx,
    observed: observedContainer('container-running.json'),
    context: cliContext,
    type: 'none',
    drift: [],
  },
  {
    name: 'a container on a network that does not exist yet waits',
    desired: nginx,
    observed: undefined,
    context: emptyContext(),
    type: 'wait',
  },
];

describe('planContainer against real inspect output', () => {
  it.each(cases)('$name', (c) => {
    const [action, ...rest] = planContainer(c.desired, c.observed, c.context ?? context);
    expect(rest).toEqual([]);
    expect(action?.type).toBe(c.type);
    if (c.drift !== undefined && action !== undefined && 'drift' in action) {
      expect(action.drift.map((d) => d.path).filter((p) => p.startsWith('spec.'))).toEqual(c.drift);
    }
  });

  it('adopting reports the labels it cannot add as drift, and recreates on any field drift', () => {
    const [kept] = planContainer(cliNginx, observedContainer('container-running.json'), cliContext);
    expect(kept?.type === 'none' && kept.drift.map((d) => d.path).join(' ')).toContain(LABELS.managed);
    const changed = { ...cliNginx, spec: { ...cliNginx.spec, image: 'local/busybox:2' } };
    const [recreated] = planContainer(changed, observedContainer('container-running.json'), cliContext);
    expect(recreated?.type).toBe('recreate');
  });
});

describe('containerBlueprintFor', () => {
  it('is exactly what the round-trip container was created from', () => {
    expect(containerBlueprintFor(nginx, context)).toEqual(readFixture('sent/container-nginx.json'));
  });

  it('joins the first network at create and connects the rest afterwards', () => {
    const blueprint = containerBlueprintFor(nginx, context);
    expect(blueprint.create.HostConfig?.NetworkMode).toBe('skfix-rt-net');
    expect(Object.keys(blueprint.create.NetworkingConfig?.EndpointsConfig ?? {})).toEqual(['skfix-rt-net']);
    expect(blueprint.connect).toEqual([{ network: 'skfix-rt-bridge', aliases: ['proxy'] }]);
    expect(containerCreateOptionsFor(nginx, context)).toEqual(blueprint.create);
  });
});

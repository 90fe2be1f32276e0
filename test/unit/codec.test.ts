import { describe, expect, it } from 'vitest';
import {
  RESERVED_FIELDS,
  changedFields,
  decodeRecord,
  decodeResource,
  decodeStatus,
  encodeResource,
  encodeStatus,
} from '../../src/desired/codec.js';
import type { ResourceStatus } from '../../src/desired/store.js';
import { API_VERSION } from '../../src/resources/metadata.js';
import { validateResource, type Resource } from '../../src/resources/resource.js';

/** A typed resource from a manifest-shaped object; fails the test when the fixture itself is invalid. */
function resource(
  kind: string,
  name: string,
  spec: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Resource {
  const result = validateResource({ apiVersion: API_VERSION, kind, metadata: { name, ...extra }, spec });
  if (!result.ok) throw new Error(`bad fixture ${kind}/${name}: ${JSON.stringify(result.issues)}`);
  return result.resource;
}

function decodeOk(kind: string, name: string, hash: Record<string, string>): Resource {
  const result = decodeResource(kind, name, hash);
  if (!result.ok) throw new Error(`expected ${kind}/${name} to decode: ${JSON.stringify(result.issues)}`);
  return result.resource;
}

const richService = resource(
  'Service',
  'jupyterhubserver',
  {
    image: 'yourusername/jupyterhub-docker:latest',
    command: ['jupyterhub', '-f', '/usr/local/etc/jupyterhub/jupyterhub_config.py'],
    entrypoint: ['tini', '--'],
    workingDir: '/srv/jupyterhub',
    user: '1000:1000',
    hostname: 'hub',
    env: { DOCKER_NETWORK_NAME: 'jupyterhub', EMPTY: '' },
    containerLabels: { team: 'data' },
    networks: ['jupyterhub', { name: 'backend', aliases: ['hub'] }],
    ports: [{ target: 8000, published: 8000, protocol: 'tcp', mode: 'ingress' }],
    mounts: [
      { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock', readOnly: true },
      { type: 'volume', source: 'nfsvolume', target: '/var/nfs', volume: { noCopy: true } },
      { type: 'tmpfs', target: '/tmp', tmpfs: { size: '64M', mode: 1777 } },
    ],
    configs: [{ source: 'jupyterhub-config', target: '/etc/jupyterhub_config.py', mode: '0444' }],
    secrets: [{ source: 'oauth-client-secret', uid: '0', gid: '0', mode: '0400' }],
    mode: 'replicated',
    replicas: 2,
    placement: {
      constraints: ['node.role == manager'],
      preferences: [{ spread: 'node.id' }],
      maxReplicas: 1,
    },
    resources: {
      limits: { cpus: 1, memory: '1Gi', pids: 200 },
      reservations: { cpus: '0.25', memory: 268435456 },
    },
    restartPolicy: { condition: 'any', delay: '5s', maxAttempts: 3, window: '1m' },
    updateConfig: {
      parallelism: 1,
      delay: '10s',
      failureAction: 'rollback',
      monitor: '30s',
      maxFailureRatio: 0.5,
      order: 'stop-first',
    },
    rollbackConfig: { parallelism: 1, order: 'stop-first' },
    healthcheck: { test: ['CMD', 'true'], interval: '30s', timeout: '5s', retries: 3, startPeriod: '10s' },
    capAdd: ['NET_ADMIN'],
    capDrop: ['CAP_MKNOD'],
    stopGracePeriod: '30s',
    stopSignal: 'SIGTERM',
    endpointMode: 'vip',
  },
  { labels: { tier: 'hub' }, annotations: { 'swarmkeeper/ignore-fields': 'replicas', note: 'x' } },
);

const roundTrips: [string, Resource][] = [
  ['a rich Service with labels and annotations', richService],
  [
    'a global Service',
    resource('Service', 'agent', { image: 'agent:1', mode: 'global', env: ['A=1', 'B=2'] }),
  ],
  [
    'a Network',
    resource('Network', 'jupyterhub', {
      driver: 'overlay',
      attachable: true,
      internal: false,
      encrypted: true,
      driverOpts: { 'com.docker.network.driver.mtu': '1400' },
      ipam: { driver: 'default', config: [{ subnet: '10.10.0.0/24', gateway: '10.10.0.1' }] },
    }),
  ],
  [
    'a Volume',
    resource('Volume', 'nfsvolume', {
      driver: 'local',
      driverOpts: { type: 'nfs4', o: 'addr=10.0.0.1,rw', device: ':/var/nfs' },
      reclaimPolicy: 'Retain',
    }),
  ],
  ['a Volume with an empty spec', resource('Volume', 'scratch', {})],
  [
    'a Config',
    resource('Config', 'nginx-conf', { data: 'server {\n  listen 80;\n}\n' }, { labels: { app: 'nginx' } }),
  ],
  ['a Config whose data looks like JSON and a number', resource('Config', 'odd', { data: '{"a": 1}' })],
  ['a Secret', resource('Secret', 'oauth-client-secret', { data: '12345' })],
  [
    'a Container',
    resource('Container', 'letsencrypt', {
      image: 'linuxserver/swag:latest',
      entrypoint: ['/init'],
      command: ['run'],
      env: { URL: 'example.org', VALIDATION: 'http' },
      containerLabels: { role: 'tls' },
      networks: [{ name: 'jupyterhub', aliases: ['proxy'] }],
      ports: [
        { target: 80, published: 80 },
        { target: 443, published: 443, protocol: 'tcp', hostIp: '0.0.0.0' },
      ],
      mounts: [{ type: 'bind', source: '/etc/letsencrypt', target: '/config' }],
      capAdd: ['NET_ADMIN'],
      restart: 'unless-stopped',
      resources: { limits: { cpus: '0.5', memory: '256M' } },
      healthcheck: { test: 'curl -f http://localhost/', disable: false },
      state: 'running',
    }),
  ],
  [
    'a HomeFolders',
    resource('HomeFolders', 'nfs', {
      root: '/var/nfs',
      naming: 'md5',
      owner: { uid: 1000, gid: 100 },
      mode: '0770',
      emailFile: true,
      quota: { driver: 'xfs', default: '10Gi' },
      volume: { name: 'jupyterhub-user-{username}', driver: 'local', driverOpts: { type: 'none' } },
      reclaimPolicy: 'Archive',
    }),
  ],
  ['a User', resource('User', 'alice', { email: 'alice@example.org', quota: '2Gi', homeFolders: 'nfs' })],
  ['a User whose quota is a byte count', resource('User', 'bob', { quota: 1073741824 })],
  ['a User whose quota is a digit string', resource('User', 'carol', { quota: '0' })],
  ['a User with an empty spec', resource('User', 'dave', {})],
];

describe('round trip: decode(encode(r)) equals r', () => {
  it.each(roundTrips)('%s', (_label, original) => {
    const hash = encodeResource(original);
    expect(Object.keys(hash).length).toBeGreaterThan(0);
    const decoded = decodeOk(original.kind, original.metadata.name, hash);
    expect(decoded).toEqual(original);
    // toEqual ignores undefined-valued keys; the encoded form must match too.
    expect(encodeResource(decoded)).toEqual(hash);
  });
});

describe('encodeResource', () => {
  it.each([
    ['replicas', 'Service', { image: 'nginx:1.27', replicas: 2 }, 'replicas', '2'],
    ['a plain string', 'Service', { image: 'nginx:1.27' }, 'image', 'nginx:1.27'],
    ['attachable', 'Network', { attachable: true }, 'attachable', 'true'],
    ['a false boolean', 'Network', { internal: false }, 'internal', 'false'],
    ['a size with a unit', 'User', { quota: '2Gi' }, 'quota', '2Gi'],
    ['a size as a byte count', 'User', { quota: 1024 }, 'quota', '1024'],
    ['a size as a digit string, kept a string', 'User', { quota: '1024' }, 'quota', '"1024"'],
    ['a list as JSON', 'Service', { image: 'x', networks: ['a', 'b'] }, 'networks', '["a","b"]'],
    ['a map as JSON', 'Volume', { driverOpts: { type: 'nfs4' } }, 'driverOpts', '{"type":"nfs4"}'],
    [
      'a list of objects as JSON',
      'Service',
      { image: 'x', ports: [{ target: 80, published: 8080 }] },
      'ports',
      '[{"target":80,"published":8080}]',
    ],
    ['string payload data verbatim', 'Config', { data: '42' }, 'data', '42'],
  ])('writes %s plainly or as JSON', (_label, kind, spec, field, expected) => {
    const name = kind === 'Volume' ? 'vol' : 'thing';
    expect(encodeResource(resource(kind, name, spec))[field]).toBe(expected);
  });

  it('writes metadata into the reserved fields and never the name or kind', () => {
    const hash = encodeResource(
      resource('Network', 'net', {}, { labels: { a: 'b' }, annotations: { c: 'd' } }),
    );
    expect(hash).toEqual({
      [RESERVED_FIELDS.apiVersion]: API_VERSION,
      [RESERVED_FIELDS.labels]: '{"a":"b"}',
      [RESERVED_FIELDS.annotations]: '{"c":"d"}',
    });
  });

  it('names the reserved fields with a leading underscore', () => {
    expect(RESERVED_FIELDS).toEqual({
      apiVersion: '_apiVersion',
      labels: '_labels',
      annotations: '_annotations',
    });
  });
});

describe('decodeResource reads redis-cli style values by the schema', () => {
  it.each<[string, string, string, Record<string, string>, Record<string, unknown>]>([
    [
      'replicas as a number',
      'Service',
      'nginx',
      { image: 'nginx:1.27', replicas: '2' },
      { image: 'nginx:1.27', replicas: 2 },
    ],
    [
      'booleans',
      'Network',
      'net',
      { attachable: 'true', internal: 'false' },
      { attachable: true, internal: false },
    ],
    [
      'a size with a unit as a string',
      'User',
      'alice',
      { email: 'alice@example.org', quota: '2Gi' },
      { email: 'alice@example.org', quota: '2Gi' },
    ],
    ['a bare byte count as a number', 'User', 'bob', { quota: '1073741824' }, { quota: 1073741824 }],
    ['a quoted byte count as a string', 'User', 'bob', { quota: '"1024"' }, { quota: '1024' }],
    [
      'a string field that looks numeric as a string',
      'Service',
      's',
      { image: '1234', user: '1000' },
      { image: '1234', user: '1000' },
    ],
    [
      'network attachments of both forms',
      'Service',
      's',
      { image: 'x', networks: '["jupyterhub",{"name":"backend","aliases":["hub"]}]' },
      { image: 'x', networks: ['jupyterhub', { name: 'backend', aliases: ['hub'] }] },
    ],
    ['env as a map', 'Service', 's', { image: 'x', env: '{"A":"1"}' }, { image: 'x', env: { A: '1' } }],
    ['env as a list', 'Container', 'cc', { image: 'x', env: '["A=1"]' }, { image: 'x', env: ['A=1'] }],
    [
      'JSON with spaces',
      'Service',
      's',
      { image: 'x', ports: '[ { "target": 80 } ]' },
      { image: 'x', ports: [{ target: 80 }] },
    ],
    ['an enum', 'Volume', 'vol', { reclaimPolicy: 'Delete' }, { reclaimPolicy: 'Delete' }],
    ['an empty record', 'User', 'erin', {}, {}],
  ])('%s', (_label, kind, name, hash, spec) => {
    const decoded = decodeOk(kind, name, hash);
    expect(decoded.kind).toBe(kind);
    expect(decoded.metadata).toEqual({ name });
    expect(decoded.spec).toEqual(spec);
  });

  it('reads labels and annotations from the reserved fields', () => {
    const decoded = decodeOk('Network', 'net', {
      _labels: '{"team":"data"}',
      _annotations: '{"swarmkeeper/adopt":"true"}',
    });
    expect(decoded.metadata).toEqual({
      name: 'net',
      labels: { team: 'data' },
      annotations: { 'swarmkeeper/adopt': 'true' },
    });
  });
});

type IssueExpectation = { path: string; message: string | RegExp };

describe('decodeResource reports every problem with its path', () => {
  it.each<[string, string, string, Record<string, string>, IssueExpectation[]]>([
    [
      'a number field holding a word',
      'Service',
      'nginx',
      { image: 'x', replicas: 'two' },
      [{ path: 'spec.replicas', message: /number/ }],
    ],
    [
      'a number below its minimum',
      'Service',
      'nginx',
      { image: 'x', replicas: '-1' },
      [{ path: 'spec.replicas', message: />=\s*0/ }],
    ],
    [
      'a boolean field holding yes',
      'Network',
      'net',
      { attachable: 'yes' },
      [{ path: 'spec.attachable', message: /boolean/ }],
    ],
    [
      'invalid JSON in a list field',
      'Service',
      'nginx',
      { image: 'x', ports: '[{"target": 80' },
      [{ path: 'spec.ports', message: /^invalid JSON: / }],
    ],
    [
      'bad JSON and a wrong type together',
      'Service',
      'nginx',
      { image: 'x', replicas: 'two', ports: 'not json', env: '{broken' },
      [
        { path: 'spec.ports', message: /^invalid JSON: / },
        { path: 'spec.env', message: /^invalid JSON: / },
        { path: 'spec.replicas', message: /number/ },
      ],
    ],
    [
      'a type error inside JSON',
      'Service',
      'nginx',
      { image: 'x', ports: '[{"target":"eighty"}]' },
      [{ path: 'spec.ports[0].target', message: /number/ }],
    ],
    [
      'an unknown field',
      'Service',
      'nginx',
      { image: 'x', replica: '2' },
      [{ path: 'spec.replica', message: 'unknown field' }],
    ],
    [
      'an unknown reserved field',
      'Network',
      'net',
      { _owner: 'me' },
      [{ path: '_owner', message: 'unknown reserved field' }],
    ],
    ['an unknown kind', 'Gadget', 'g', { size: '1' }, [{ path: 'kind', message: /unknown kind "Gadget"/ }]],
    [
      'a missing required field',
      'Service',
      'nginx',
      { replicas: '1' },
      [{ path: 'spec.image', message: /string/ }],
    ],
    [
      'a Config with file instead of data',
      'Config',
      'nginx-conf',
      { data: 'x', file: 'nginx.conf' },
      [{ path: 'spec.file', message: 'only allowed in manifests; apply reads the file into data' }],
    ],
    [
      'a Secret with only file',
      'Secret',
      'token',
      { file: 'token.txt' },
      [
        { path: 'spec.file', message: 'only allowed in manifests; apply reads the file into data' },
        { path: 'spec', message: 'set exactly one of data and file' },
      ],
    ],
    [
      'invalid JSON in labels',
      'Network',
      'net',
      { _labels: '{oops' },
      [{ path: 'metadata.labels', message: /^invalid JSON: / }],
    ],
    [
      'a label the controller owns',
      'Network',
      'net',
      { _labels: '{"io.swarmkeeper.managed":"true"}' },
      [{ path: 'metadata.labels.io.swarmkeeper.managed', message: /key/ }],
    ],
    [
      'another apiVersion',
      'Network',
      'net',
      { _apiVersion: 'swarmkeeper/v2' },
      [{ path: '_apiVersion', message: /swarmkeeper\/v1/ }],
    ],
    [
      'a name the kind refuses',
      'Network',
      'bad name',
      {},
      [{ path: 'metadata.name', message: /letter or digit/ }],
    ],
    [
      'a rule across fields',
      'Service',
      'agent',
      { image: 'x', mode: 'global', replicas: '2' },
      [{ path: 'spec.replicas', message: 'a global service takes no replicas' }],
    ],
  ])('%s', (_label, kind, name, hash, expected) => {
    const result = decodeResource(kind, name, hash);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues).toHaveLength(expected.length);
    for (const want of expected) {
      const found = result.issues.filter((issue) => issue.path === want.path);
      expect(found, `issues at ${want.path}: ${JSON.stringify(result.issues)}`).toHaveLength(1);
      if (typeof want.message === 'string') expect(found[0]?.message).toBe(want.message);
      else expect(found[0]?.message).toMatch(want.message);
    }
  });

  it('wraps the outcome as a stored record that keeps the key, kind and name', () => {
    const key = 'sk:desired:Service:nginx';
    const bad = decodeRecord({ key, kind: 'Service', name: 'nginx', hash: { image: 'x', replicas: 'two' } });
    expect(bad).toMatchObject({ ok: false, key, kind: 'Service', name: 'nginx' });
    expect(bad.ok ? [] : bad.issues.map((issue) => issue.path)).toEqual(['spec.replicas']);
    const ok = decodeRecord({ key, kind: 'Service', name: 'nginx', hash: { image: 'x' } });
    expect(ok).toEqual({ ok: true, key, resource: resource('Service', 'nginx', { image: 'x' }) });
  });
});

describe('changedFields', () => {
  it.each<[string, Record<string, string> | undefined, Record<string, string>, string[]]>([
    ['everything for a new record', undefined, { image: 'x', _apiVersion: 'v' }, ['_apiVersion', 'image']],
    ['nothing for the same record', { image: 'x' }, { image: 'x' }, []],
    [
      'changed, added and removed fields',
      { image: 'x', replicas: '1', user: 'u' },
      { image: 'y', replicas: '1', hostname: 'h' },
      ['hostname', 'image', 'user'],
    ],
  ])('%s', (_label, before, after, expected) => {
    expect(changedFields(before, after)).toEqual(expected);
  });
});

describe('status codec', () => {
  const full: ResourceStatus = {
    sync: 'OutOfSync',
    health: 'Degraded',
    message: '1/2 tasks running',
    observedHash: 'abc123',
    lastSyncedAt: '2025-01-01T00:00:00.000Z',
    lastDriftAt: '2025-01-02T00:00:00.000Z',
    lastDrift: [{ path: 'spec.replicas', desired: 2, actual: 1 }],
  };

  it('round-trips every field, with lastDrift as JSON', () => {
    const hash = encodeStatus(full);
    expect(hash.lastDrift).toBe('[{"path":"spec.replicas","desired":2,"actual":1}]');
    expect(hash.sync).toBe('OutOfSync');
    expect(decodeStatus(hash)).toEqual(full);
  });

  it('writes only the fields that are set', () => {
    expect(encodeStatus({ sync: 'Synced' })).toEqual({ sync: 'Synced' });
  });

  it('reads an empty hash as no status and drops garbled fields', () => {
    expect(decodeStatus({})).toBeUndefined();
    expect(decodeStatus({ sync: 'Sideways', health: 'Healthy', lastDrift: '{not json' })).toEqual({
      health: 'Healthy',
    });
  });
});

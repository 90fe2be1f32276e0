import { describe, expect, it } from 'vitest';
import { validateResource } from '../../src/resources/resource.js';
import { manifestJsonSchema } from '../../src/resources/schema.js';

const doc = (kind: string, name: string, spec: unknown, extra: Record<string, unknown> = {}): unknown => ({
  apiVersion: 'swarmkeeper/v1',
  kind,
  metadata: { name, ...extra },
  spec,
});

describe('validateResource accepts', () => {
  it.each([
    ['an attachable overlay network', doc('Network', 'jupyterhub', { driver: 'overlay', attachable: true })],
    [
      'an NFS volume',
      doc('Volume', 'nfsvolume', {
        driver: 'local',
        driverOpts: { type: 'nfs4', o: 'addr=192.0.2.10,rw', device: ':/var/nfs' },
      }),
    ],
    ['a config with inline data', doc('Config', 'nginx-conf', { data: 'server {}' })],
    [
      'a service with every common field',
      doc('Service', 'jupyterhubserver', {
        image: 'jupyterhub/jupyterhub:5',
        command: ['jupyterhub', '-f', '/srv/jupyterhub/jupyterhub_config.py'],
        env: { A: '1' },
        networks: ['jupyterhub', { name: 'backend', aliases: ['hub'] }],
        ports: [{ target: 8000, published: 8000, mode: 'host' }],
        mounts: [
          { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock' },
          { source: 'nfsvolume', target: '/var/nfs', volume: { noCopy: true } },
        ],
        configs: [{ source: 'nginx-conf', target: '/etc/nginx/conf.d/default.conf', mode: '0444' }],
        placement: { constraints: ['node.role == manager'] },
        replicas: 1,
        resources: { limits: { cpus: '0.5', memory: '512M' }, reservations: { cpus: 0.25, memory: '1Gi' } },
        restartPolicy: { condition: 'on-failure', delay: '5s', maxAttempts: 3 },
        updateConfig: { parallelism: 1, order: 'start-first' },
        healthcheck: { test: ['CMD', 'true'], interval: '10s' },
        capAdd: ['NET_ADMIN'],
      }),
    ],
    [
      'a container outside the Swarm',
      doc('Container', 'letsencrypt-nginx', {
        image: 'linuxserver/letsencrypt',
        capAdd: ['NET_ADMIN'],
        ports: [{ target: 443, published: 443 }],
        restart: 'unless-stopped',
      }),
    ],
    [
      'home folders',
      doc('HomeFolders', 'nfs', {
        root: '/var/nfs',
        naming: 'md5',
        owner: { uid: 1000, gid: 100 },
        mode: '0770',
        quota: { driver: 'xfs', default: '1Gi' },
        volume: { name: 'jupyterhub-user-{username}', driverOpts: { type: 'nfs4' } },
      }),
    ],
    [
      'a user with an e-mail for a name',
      doc('User', 'alice.b@example.org', { email: 'alice@example.org', quota: '2Gi' }),
    ],
    ['a user with a unicode name', doc('User', 'zoë', { quota: 0 })],
  ])('%s', (_label, input) => {
    const result = validateResource(input);
    expect(result.ok ? [] : result.issues).toEqual([]);
  });
});

describe('validateResource rejects, naming the field', () => {
  it.each([
    ['replicas: two', doc('Service', 'nginx', { image: 'nginx', replicas: 'two' }), 'spec.replicas'],
    ['a missing image', doc('Service', 'nginx', {}), 'spec.image'],
    ['an unknown spec field', doc('Service', 'nginx', { image: 'nginx', replica: 1 }), 'spec'],
    [
      'a bad memory size',
      doc('Service', 'nginx', { image: 'nginx', resources: { limits: { memory: '1Zi' } } }),
      'spec.resources.limits.memory',
    ],
    [
      'a bad CPU count',
      doc('Service', 'nginx', { image: 'nginx', resources: { limits: { cpus: 'half' } } }),
      'spec.resources.limits.cpus',
    ],
    [
      'a global service with replicas',
      doc('Service', 'nginx', { image: 'nginx', mode: 'global', replicas: 2 }),
      'spec.replicas',
    ],
    [
      'a relative bind source',
      doc('Service', 'n', { image: 'x', mounts: [{ type: 'bind', source: 'etc', target: '/x' }] }),
      'spec.mounts[0].source',
    ],
    ['a service name with a slash', doc('Service', 'a/b', { image: 'nginx' }), 'metadata.name'],
    ['a network name with a space', doc('Network', 'my net', {}), 'metadata.name'],
    ['a user name with ../', doc('User', '../root', {}), 'metadata.name'],
    ['a user name with /', doc('User', 'a/b', {}), 'metadata.name'],
    ['a user name with NUL', doc('User', 'a\0b', {}), 'metadata.name'],
    ['a user name with ;', doc('User', 'a;rm', {}), 'metadata.name'],
    ['a user name with $(…)', doc('User', '$(id)', {}), 'metadata.name'],
    ['a user name that is ..', doc('User', '..', {}), 'metadata.name'],
    ['a user name with a leading dot', doc('User', '.hidden', {}), 'metadata.name'],
    ['a quota of -1', doc('User', 'alice', { quota: '-1' }), 'spec.quota'],
    ['a quota of abc', doc('User', 'alice', { quota: 'abc' }), 'spec.quota'],
    ['a bad e-mail', doc('User', 'alice', { email: 'not-an-email' }), 'spec.email'],
    ['a numeric mode', doc('HomeFolders', 'nfs', { root: '/var/nfs', mode: 770 }), 'spec.mode'],
    ['a relative root', doc('HomeFolders', 'nfs', { root: 'var/nfs' }), 'spec.root'],
    [
      'a template without {username}',
      doc('HomeFolders', 'nfs', { root: '/v', volume: { name: 'vol' } }),
      'spec.volume.name',
    ],
    ['a config with data and file', doc('Config', 'c', { data: 'x', file: 'y' }), 'spec'],
    [
      'a reserved label',
      doc('Network', 'n', {}, { labels: { 'io.swarmkeeper.managed': 'true' } }),
      'metadata.labels',
    ],
    ['an unknown kind', doc('Deployment', 'x', {}), 'kind'],
    [
      'a wrong apiVersion',
      { apiVersion: 'v1', kind: 'Network', metadata: { name: 'n' }, spec: {} },
      'apiVersion',
    ],
  ])('%s', (_label, input, path) => {
    const result = validateResource(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((i) => i.path)).toContainEqual(expect.stringContaining(path));
  });

  it('reports every failing field, not only the first', () => {
    const result = validateResource(doc('Service', 'bad name', { image: '', replicas: -1 }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.issues.map((i) => i.path)).toEqual(
        expect.arrayContaining(['metadata.name', 'spec.image', 'spec.replicas']),
      );
    }
  });
});

describe('manifestJsonSchema', () => {
  it('describes every kind by its discriminator', () => {
    const schema = JSON.stringify(manifestJsonSchema());
    for (const kind of [
      'Network',
      'Volume',
      'Config',
      'Secret',
      'Service',
      'Container',
      'HomeFolders',
      'User',
    ]) {
      expect(schema).toContain(`"const":"${kind}"`);
    }
    expect(schema).toContain('"replicas"');
  });
});

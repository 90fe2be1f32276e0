/**
 * Export against real engine output (test/fixtures/observed): every object, exported and
 * translated back, diffs clean against the object it came from, so adopting it is at most a
 * labels-only change. And the manifests carry only what matters, not Swarm's filled-in defaults.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ServiceSpec } from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  configManifest,
  containerManifest,
  envMap,
  networkManifest,
  serviceManifest,
  unpinnedImage,
  volumeManifest,
  type ImageDefaults,
  type ServiceExportContext,
  type Translation,
} from '../../src/export/swarm.js';
import { renderFiles, renderManifests } from '../../src/export/render.js';
import { formatBytes, formatCpus, formatDuration, formatOctalMode } from '../../src/export/units.js';
import { matchesName, matchesSelector, parseSelector } from '../../src/export/export.js';
import {
  containerBlueprintFor,
  diffContainer,
  diffNetwork,
  diffPayload,
  diffService,
  diffVolume,
  configCreateFor,
  networkCreateOptionsFor,
  serviceSpecFor,
  volumeCreateOptionsFor,
  type ReconcileContext,
} from '../../src/reconcile/index.js';
import { payloadRefSet } from '../../src/reconcile/normalise.js';
import { loadManifests } from '../../src/resources/manifest.js';
import type { ResourceOf } from '../../src/resources/resource.js';
import { parseBytes, parseDurationNanos, parseNanoCpus } from '../../src/resources/units.js';
import {
  copy,
  observedContainer,
  observedNetwork,
  observedPayload,
  observedService,
  observedVolume,
  roundtripContext,
} from './reconcile/fixtures.js';

function ok<K extends 'Network' | 'Volume' | 'Config' | 'Service' | 'Container'>(
  translation: Translation<K>,
): ResourceOf<K> {
  if (!translation.ok) throw new Error(translation.reason);
  return translation.resource;
}

/** Network IDs in the fixtures: the round-trip context's, plus the CLI fixtures' skfix-net. */
const NETWORK_IDS = new Map([...roundtripContext().networks, ['skfix-net', 't36vo2rsxlif56xwhq4dncdjb']]);

/**
 * The export context and the reconcile context for one service: each config or secret it mounts
 * is its own resource, realised by the very object it mounts now (what adopting it should mean).
 */
function contexts(spec: ServiceSpec): { exportContext: ServiceExportContext; reconcile: ReconcileContext } {
  const realised = roundtripContext();
  const resourceOf = (map: ReadonlyMap<string, { name: string }>) => (objectName: string) =>
    [...map].find(([, r]) => r.name === objectName)?.[0] ?? objectName;
  const realisedConfigs = new Map(realised.realisedConfigs);
  const realisedSecrets = new Map(realised.realisedSecrets);
  const container =
    spec.TaskTemplate && 'ContainerSpec' in spec.TaskTemplate ? spec.TaskTemplate.ContainerSpec : {};
  for (const raw of (container as { Configs?: { ConfigID: string; ConfigName: string }[] }).Configs ?? [])
    if (![...realisedConfigs.values()].some((r) => r.name === raw.ConfigName))
      realisedConfigs.set(raw.ConfigName, { id: raw.ConfigID, name: raw.ConfigName });
  for (const raw of (container as { Secrets?: { SecretID: string; SecretName: string }[] }).Secrets ?? [])
    if (![...realisedSecrets.values()].some((r) => r.name === raw.SecretName))
      realisedSecrets.set(raw.SecretName, { id: raw.SecretID, name: raw.SecretName });
  return {
    exportContext: {
      networkNames: new Map([...NETWORK_IDS].map(([name, id]) => [id, name])),
      configResource: resourceOf(realisedConfigs),
      secretResource: resourceOf(realisedSecrets),
    },
    reconcile: { networks: NETWORK_IDS, realisedConfigs, realisedSecrets },
  };
}

const SERVICES = [
  'service-cli-rich.json',
  'service-cli-minimal.json',
  'service-cli-global.json',
  'service-cli-wired.json',
  'service-cli-adopt.json',
  'service-roundtrip.json',
  'service-roundtrip-minimal.json',
  'service-roundtrip-updated.json',
  'service-adopted.json',
];

describe('serviceManifest', () => {
  it.each(SERVICES)('%s: exported and translated back, it has no field drift', (file) => {
    const spec = observedService(file).Spec ?? {};
    const { exportContext, reconcile } = contexts(spec);
    const resource = ok(serviceManifest(spec, exportContext));
    expect(resource.metadata.annotations).toEqual({ 'swarmkeeper/adopt': 'true' });
    const diff = diffService(serviceSpecFor(resource, reconcile), spec, { networks: reconcile.networks });
    expect(diff.fields).toEqual([]);
    // Adopting adds swarmkeeper's labels and nothing else.
    expect(diff.labels.every((d) => d.path.startsWith('metadata.labels["io.swarmkeeper.'))).toBe(true);
  });

  it('leaves out what `docker service create` filled in', () => {
    const spec = observedService('service-cli-rich.json').Spec ?? {};
    const resource = ok(serviceManifest(spec, contexts(spec).exportContext));
    expect(resource.spec).toEqual({
      image: 'local/busybox:1',
      command: ['sleep', '3600'],
      env: { A: '1', B: '2' },
      ports: [{ target: 80, published: 18999, mode: 'host' }],
      mounts: [{ type: 'bind', source: '/tmp', target: '/x' }],
      replicas: 1,
      placement: { constraints: ['node.role==manager'] },
      resources: { limits: { cpus: 0.5, memory: '64Mi' } },
      healthcheck: { test: 'true', interval: '30s' },
      capAdd: ['CAP_NET_ADMIN'],
    });
    // Labels under the controller's prefix (the fixtures' own run label is one) never go into a manifest.
    expect(resource.metadata.labels).toBeUndefined();
  });

  it('names networks and the configs and secrets it mounts by resource, and keeps non-default policies', () => {
    const spec = observedService('service-cli-wired.json').Spec ?? {};
    const resource = ok(serviceManifest(spec, contexts(spec).exportContext));
    expect(resource.spec).toMatchObject({
      networks: [{ name: 'skfix-net', aliases: ['web'] }],
      configs: [{ source: 'skfix-conf-0000aaaa', target: '/etc/nginx.conf' }],
      // A relative file name is where the engine puts it, the default path for the secret.
      secrets: [{ source: 'skfix-secret-0000bbbb' }],
      ports: [{ target: 80, published: 18080 }, { target: 8000 }],
      restartPolicy: { condition: 'on-failure' },
      updateConfig: { parallelism: 2 },
      mounts: [
        { source: 'skfix-vol', target: '/data' },
        { type: 'tmpfs', target: '/tmpfs', tmpfs: { size: '1Mi' } },
      ],
    });
    expect(resource.spec.rollbackConfig).toBeUndefined();
    expect(resource.spec.endpointMode).toBeUndefined();
  });

  it('reads a service swarmkeeper made back to its manifest, config by resource name', () => {
    const spec = observedService('service-roundtrip.json').Spec ?? {};
    const resource = ok(serviceManifest(spec, contexts(spec).exportContext));
    expect(resource.spec).toMatchObject({
      entrypoint: ['sleep'],
      command: ['3600'],
      configs: [{ source: 'skfix-rt-conf', target: '/etc/nginx/conf.d/default.conf' }],
      secrets: [{ source: 'skfix-rt-secret', uid: '1000', gid: '100', mode: '0400' }],
      restartPolicy: { condition: 'on-failure', delay: '10s', maxAttempts: 3, window: '1m' },
      updateConfig: {
        parallelism: 2,
        delay: '5s',
        failureAction: 'rollback',
        monitor: '10s',
        maxFailureRatio: 0.1,
        order: 'start-first',
      },
      rollbackConfig: { delay: '1s' },
      stopGracePeriod: '20s',
      healthcheck: { test: ['CMD', 'true'], interval: '30s', timeout: '5s', retries: 3, startPeriod: '10s' },
    });
    expect(resource.metadata.labels).toEqual({ app: 'jupyterhub' });
  });

  it('a global service has a mode and no replicas', () => {
    const spec = observedService('service-cli-global.json').Spec ?? {};
    const resource = ok(serviceManifest(spec, contexts(spec).exportContext));
    expect(resource.spec.mode).toBe('global');
    expect(resource.spec.replicas).toBeUndefined();
  });

  it('drops the digest Swarm pinned, and still diffs clean against the pinned spec', () => {
    // Edited copy: the lab has no registry, so no fixture carries a pin (see test/fixtures/README.md).
    const spec = copy(observedService('service-cli-minimal.json').Spec ?? {});
    const pinned = `local/busybox:1@sha256:${'a'.repeat(64)}`;
    if (spec.TaskTemplate && 'ContainerSpec' in spec.TaskTemplate && spec.TaskTemplate.ContainerSpec)
      spec.TaskTemplate.ContainerSpec.Image = pinned;
    const { exportContext, reconcile } = contexts(spec);
    const resource = ok(serviceManifest(spec, exportContext));
    expect(resource.spec.image).toBe('local/busybox:1');
    expect(diffService(serviceSpecFor(resource, reconcile), spec).fields).toEqual([]);
  });

  it('refuses job services, which a manifest cannot express', () => {
    const spec = copy(observedService('service-cli-minimal.json').Spec ?? {});
    spec.Mode = { ReplicatedJob: {} };
    expect(serviceManifest(spec, contexts(spec).exportContext)).toMatchObject({ ok: false });
  });

  it('warns about settings a manifest cannot carry', () => {
    const spec = copy(observedService('service-cli-minimal.json').Spec ?? {});
    if (spec.TaskTemplate && 'ContainerSpec' in spec.TaskTemplate && spec.TaskTemplate.ContainerSpec) {
      const cs = spec.TaskTemplate.ContainerSpec as Record<string, unknown>;
      cs.Init = true;
      cs.Hosts = ['10.0.0.1 db'];
    }
    const translation = serviceManifest(spec, contexts(spec).exportContext);
    expect(translation.ok && translation.warnings.join()).toContain('init, extra hosts');
  });
});

describe('networkManifest, volumeManifest, configManifest', () => {
  it.each([
    'network-net.json',
    'network-net-attachable.json',
    'network-net-rich.json',
    'network-bridge.json',
    'network-roundtrip.json',
    'network-roundtrip-bridge.json',
  ])('%s: no field drift, only the labels Docker cannot add', (file) => {
    const observed = observedNetwork(file);
    const resource = ok(networkManifest(observed));
    const diff = diffNetwork(networkCreateOptionsFor(resource), observed);
    expect(diff.fields).toEqual([]);
  });

  it('an attachable, internal, encrypted overlay says so, and nothing about the subnet Swarm allocated', () => {
    expect(ok(networkManifest(observedNetwork('network-net-rich.json'))).spec).toEqual({
      attachable: true,
      internal: true,
      encrypted: true,
    });
    expect(ok(networkManifest(observedNetwork('network-net.json'))).spec).toEqual({});
    expect(ok(networkManifest(observedNetwork('network-bridge.json'))).spec).toEqual({ driver: 'bridge' });
  });

  it("skips Docker's own networks", () => {
    const ingress = { ...observedNetwork('network-net.json'), Name: 'ingress', Ingress: true };
    expect(networkManifest(ingress)).toMatchObject({ ok: false });
    expect(
      networkManifest({ ...observedNetwork('network-bridge.json'), Name: 'docker_gwbridge' }),
    ).toMatchObject({
      ok: false,
    });
  });

  it.each(['volume-vol.json', 'volume-nfsvol.json', 'volume-roundtrip.json'])(
    '%s: no field drift',
    (file) => {
      const observed = observedVolume(file);
      const resource = ok(volumeManifest(observed));
      expect(diffVolume(volumeCreateOptionsFor(resource), observed).fields).toEqual([]);
    },
  );

  it("the seed's NFS volume keeps its options", () => {
    expect(ok(volumeManifest(observedVolume('volume-nfsvol.json'))).spec).toEqual({
      driverOpts: { device: ':/var/nfs', o: 'addr=127.0.0.1,rw', type: 'nfs4' },
    });
  });

  it('a config carries its content inline, decoded, the same content the engine holds', () => {
    const observed = observedPayload('config.json');
    const resource = ok(configManifest(observed as Parameters<typeof configManifest>[0]));
    expect(resource.spec.data).toBe(Buffer.from(observed.Spec?.Data ?? '', 'base64').toString('utf8'));
    const diff = diffPayload(configCreateFor(resource), observed);
    expect(diff.fields).toEqual([]);
  });

  it('a config whose content is not text is refused', () => {
    const binary = {
      ID: 'x',
      Spec: { Name: 'blob', Data: Buffer.from([0xff, 0xfe, 0x00]).toString('base64') },
    };
    expect(configManifest(binary as Parameters<typeof configManifest>[0])).toMatchObject({ ok: false });
  });
});

describe('containerManifest', () => {
  const busybox: ImageDefaults = { Env: ['PATH=/bin'], Cmd: ['sh'] };

  it.each(['container-running.json', 'container-stopped.json', 'container-roundtrip.json'])(
    '%s: exported and translated back, only labels differ',
    (file) => {
      const observed = observedContainer(file);
      const resource = ok(containerManifest(observed, busybox));
      const diff = diffContainer(containerBlueprintFor(resource, roundtripContext()), observed);
      expect(diff.fields).toEqual([]);
    },
  );

  it("the seed's Let's Encrypt container, without what the image or Docker put in", () => {
    const resource = ok(containerManifest(observedContainer('container-running.json'), busybox));
    expect(resource.spec).toEqual({
      image: 'local/busybox:1',
      command: ['sleep', '3600'],
      env: { EMAIL: 'ops@example.org', URL: 'example.org' },
      networks: ['skfix-net-attachable'],
      ports: [
        { target: 443, published: 18443 },
        { target: 80, published: 18081 },
      ],
      mounts: [
        { type: 'bind', source: '/tmp', target: '/x', readOnly: true },
        { source: 'skfix-vol', target: '/config' },
      ],
      capAdd: ['CAP_NET_ADMIN'],
      restart: 'unless-stopped',
    });
    expect(ok(containerManifest(observedContainer('container-stopped.json'), busybox)).spec.state).toBe(
      'stopped',
    );
  });

  it('without the image config, the merged-in values are written out and it says so', () => {
    const translation = containerManifest(observedContainer('container-running.json'), undefined);
    expect(translation.ok && translation.resource.spec.env).toEqual({
      EMAIL: 'ops@example.org',
      PATH: '/bin',
      URL: 'example.org',
    });
    expect(translation.ok && translation.warnings.join()).toContain('could not be inspected');
  });

  it("refuses a container on another container's network stack", () => {
    const observed = copy(observedContainer('container-running.json'));
    observed.HostConfig.NetworkMode = 'container:abc';
    expect(containerManifest(observed, busybox)).toMatchObject({ ok: false });
  });
});

describe('units and small readers', () => {
  it.each([0, 1, 999, 1_000_000, 1_500_000_000, 5e9, 90e9, 3600e9, 3_723_000_000_001])(
    'formatDuration(%d) parses back to itself',
    (nanos) => {
      expect(parseDurationNanos(formatDuration(nanos))).toBe(nanos);
    },
  );
  it('formatDuration reads as people write', () => {
    expect(formatDuration(90e9)).toBe('1m30s');
    expect(formatDuration(5e9)).toBe('5s');
    expect(formatDuration(1_500_000_000)).toBe('1s500ms');
  });
  it.each([1, 1023, 1024, 67_108_864, 1_073_741_824, 1_500_000, 3 * 1024 ** 4])(
    'formatBytes(%d) parses back',
    (n) => {
      expect(parseBytes(formatBytes(n))).toBe(n);
    },
  );
  it.each([500_000_000, 1e9, 333_333_333, 2_500_000_000])('formatCpus(%d) parses back', (n) => {
    expect(parseNanoCpus(formatCpus(n))).toBe(n);
  });
  it('modes, images and env', () => {
    expect(formatOctalMode(0o444)).toBe('0444');
    expect(formatOctalMode(0o40)).toBe('0040');
    expect(unpinnedImage('nginx:1.27@sha256:abc')).toBe('nginx:1.27');
    expect(unpinnedImage('registry:5000/app@sha256:abc')).toBe('registry:5000/app@sha256:abc');
    expect(unpinnedImage('nginx')).toBe('nginx');
    expect(envMap(['B=2', 'A=1', 'A=3', 'C=x=y'])).toEqual({ A: '3', B: '2', C: 'x=y' });
    expect(envMap(['PASSTHROUGH', 'A=1'])).toEqual(['PASSTHROUGH', 'A=1']);
    expect(envMap([])).toBeUndefined();
  });
  it('selectors and name patterns', () => {
    expect(parseSelector('app=hub')).toEqual({ key: 'app', value: 'hub' });
    expect(parseSelector('app')).toEqual({ key: 'app' });
    expect(() => parseSelector('=x')).toThrow();
    expect(
      matchesSelector({ app: 'hub', tier: 'x' }, [parseSelector('app=hub'), parseSelector('tier')]),
    ).toBe(true);
    expect(matchesSelector({ app: 'hub' }, [parseSelector('tier')])).toBe(false);
    expect(matchesSelector(undefined, [])).toBe(true);
    expect(matchesName('sk12-nginx', ['sk12-*'])).toBe(true);
    expect(matchesName('sk12.nginx', ['sk12-*'])).toBe(false);
    expect(matchesName('nginx', ['hub', 'nginx'])).toBe(true);
    expect(matchesName('nginx', undefined)).toBe(true);
  });
  it('a config ref set reads back the same from the manifest and the engine', () => {
    expect(payloadRefSet([{ ConfigName: 'x', File: { Name: 'x' } }], 'Config')).toEqual([
      { name: 'x', file: '/x', uid: '0', gid: '0', mode: 0o444 },
    ]);
  });
});

describe('rendering', () => {
  it('writes files that apply reads back to the same resources', async () => {
    const spec = observedService('service-roundtrip.json').Spec ?? {};
    const resources = [
      ok(networkManifest(observedNetwork('network-net-rich.json'))),
      ok(volumeManifest(observedVolume('volume-nfsvol.json'))),
      ok(
        configManifest({
          ID: 'c',
          Spec: { Name: 'nginx-conf', Data: Buffer.from('server {\n  listen 80;\n}\n\n').toString('base64') },
        } as Parameters<typeof configManifest>[0]),
      ),
      ok(serviceManifest(spec, contexts(spec).exportContext)),
      ok(containerManifest(observedContainer('container-running.json'), { Env: ['PATH=/bin'] })),
    ];
    const dir = await mkdtemp(path.join(tmpdir(), 'sk-export-render-'));
    try {
      const files = renderFiles(resources, ['a header']);
      expect([...files.keys()]).toEqual([
        '00-networks.yaml',
        '10-volumes.yaml',
        '20-configs.yaml',
        '40-services.yaml',
        '50-containers.yaml',
      ]);
      for (const [file, text] of files) {
        expect(text.startsWith('# a header\n')).toBe(true);
        await writeFile(path.join(dir, file), text);
      }
      const loaded = await loadManifests([dir], { recursive: false, stdin: () => Promise.resolve('') });
      expect(loaded.issues).toEqual([]);
      expect(loaded.resources.map((r) => r.resource)).toEqual(resources);
      // Modes stay strings, quoted so YAML does not read them as numbers.
      expect(renderManifests(resources)).toContain(`mode: "0400"`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

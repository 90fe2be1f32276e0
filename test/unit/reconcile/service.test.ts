import type { Service, ServiceSpec } from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  diffService,
  emptyContext,
  MissingDependencyError,
  planService,
  serviceSpecFor,
  type ReconcileContext,
  type ServiceAction,
} from '../../../src/reconcile/index.js';
import { LABELS } from '../../../src/resources/metadata.js';
import type { ResourceOf } from '../../../src/resources/resource.js';
import { copy, manifest, observedService, readFixture, resource, roundtripContext } from './fixtures.js';

const context = roundtripContext();
const rich = manifest('roundtrip.json', 'Service', 'skfix-rt-rich');
const minimal = manifest('roundtrip.json', 'Service', 'skfix-rt-minimal');
const adopt = manifest('adopt.json', 'Service', 'skfix-adopt');
const roundtrip = observedService('service-roundtrip.json');

type ServiceResource = ResourceOf<'Service'>;

function withSpec(
  base: ServiceResource,
  patch: Partial<ServiceResource['spec']>,
  drop: string[] = [],
): ServiceResource {
  const spec: Record<string, unknown> = { ...base.spec, ...patch };
  for (const key of drop) delete spec[key];
  return { ...base, spec: spec as ServiceResource['spec'] };
}

function withAnnotations(base: ServiceResource, annotations: Record<string, string>): ServiceResource {
  return {
    ...base,
    metadata: { ...base.metadata, annotations: { ...base.metadata.annotations, ...annotations } },
  };
}

/** An observed service edited by `edit`; for what this engine cannot produce on its own. */
function edited(base: Service, edit: (spec: ServiceSpec & Record<string, unknown>) => void): Service {
  const service = copy(base);
  edit(service.Spec as ServiceSpec & Record<string, unknown>);
  return service;
}

function containerSpec(spec: ServiceSpec): Record<string, unknown> {
  const template = spec.TaskTemplate as { ContainerSpec: Record<string, unknown> };
  return template.ContainerSpec;
}

const SPEC_HASH = `metadata.labels[${JSON.stringify(LABELS.specHash)}]`;
const MANAGED = `metadata.labels[${JSON.stringify(LABELS.managed)}]`;

interface Case {
  readonly name: string;
  readonly desired: ServiceResource;
  readonly observed: Service;
  readonly context?: ReconcileContext;
  readonly type: ServiceAction['type'];
  readonly drift?: readonly string[];
  readonly labelsOnly?: boolean;
  readonly check?: (action: ServiceAction) => void;
}

const cases: Case[] = [
  {
    name: 'the round-tripped rich service has no drift',
    desired: rich,
    observed: roundtrip,
    type: 'none',
  },
  {
    name: 'the round-tripped minimal service has no drift',
    desired: minimal,
    observed: observedService('service-roundtrip-minimal.json'),
    type: 'none',
  },
  {
    // No registry is reachable here, so Swarm could not pin a digest: this copy adds the
    // `@sha256:` pin `docker service create` writes when it can resolve one.
    name: 'a digest Swarm pinned equals the tag asked for',
    desired: rich,
    observed: edited(roundtrip, (spec) => {
      containerSpec(spec).Image = `local/busybox:1@sha256:${'a'.repeat(64)}`;
    }),
    type: 'none',
  },
  {
    name: 'a desired digest must be matched',
    desired: withSpec(rich, { image: `local/busybox:1@sha256:${'b'.repeat(64)}` }),
    observed: edited(roundtrip, (spec) => {
      containerSpec(spec).Image = `local/busybox:1@sha256:${'a'.repeat(64)}`;
    }),
    type: 'update',
    drift: ['spec.image', SPEC_HASH],
  },
  {
    name: 'env in another order is the same env',
    desired: rich,
    observed: edited(roundtrip, (spec) => {
      const cs = containerSpec(spec);
      cs.Env = [...(cs.Env as string[])].reverse();
    }),
    type: 'none',
  },
  {
    name: 'constraints differing only in spacing are equal',
    desired: rich,
    observed: edited(roundtrip, (spec) => {
      spec.TaskTemplate = {
        ...spec.TaskTemplate,
        Placement: { ...spec.TaskTemplate?.Placement, Constraints: ['node.role==manager'] },
      };
    }),
    type: 'none',
  },
  {
    name: 'attachments under the legacy Spec.Networks are read too',
    desired: rich,
    observed: edited(roundtrip, (spec) => {
      const template = spec.TaskTemplate as { Networks?: unknown };
      spec.Networks = template.Networks as ServiceSpec['Networks'];
      delete template.Networks;
    }),
    type: 'none',
  },
  {
    name: 'a health check spelled HealthCheck (as dockerode types it) is read too',
    desired: rich,
    observed: edited(roundtrip, (spec) => {
      const cs = containerSpec(spec);
      cs.HealthCheck = cs.Healthcheck;
      delete cs.Healthcheck;
    }),
    type: 'none',
  },
  {
    name: 'changed replicas drift at spec.replicas and update only that',
    desired: withSpec(rich, { replicas: 3 }),
    observed: roundtrip,
    type: 'update',
    drift: ['spec.replicas', SPEC_HASH],
    labelsOnly: false,
    check: (action) => {
      if (action.type !== 'update') return;
      expect(action.version).toBe(roundtrip.Version?.Index);
      expect(action.body.Mode).toEqual({ Replicated: { Replicas: 3 } });
      expect(action.body.TaskTemplate).toEqual(roundtrip.Spec?.TaskTemplate);
    },
  },
  {
    name: 'a changed image drifts at spec.image',
    desired: withSpec(rich, { image: 'local/busybox:2' }),
    observed: roundtrip,
    type: 'update',
    drift: ['spec.image', SPEC_HASH],
  },
  {
    name: 'an added env var drifts at spec.env',
    desired: withSpec(rich, { env: { A: '1', B: '2', URL: 'example.org', EXTRA: 'yes' } }),
    observed: roundtrip,
    type: 'update',
    drift: ['spec.env', SPEC_HASH],
  },
  {
    name: 'ignore-fields replicas leaves a service someone scaled alone',
    desired: withAnnotations(rich, { 'swarmkeeper/ignore-fields': 'replicas' }),
    observed: edited(roundtrip, (spec) => {
      spec.Mode = { Replicated: { Replicas: 5 } };
    }),
    type: 'none',
  },
  {
    name: 'ignore-fields replicas keeps the observed count in an update for another field',
    desired: withAnnotations(withSpec(rich, { image: 'local/busybox:2' }), {
      'swarmkeeper/ignore-fields': 'replicas',
    }),
    observed: edited(roundtrip, (spec) => {
      spec.Mode = { Replicated: { Replicas: 5 } };
    }),
    type: 'update',
    drift: ['spec.image', SPEC_HASH],
    check: (action) => {
      if (action.type === 'update') expect(action.body.Mode).toEqual({ Replicated: { Replicas: 5 } });
    },
  },
  {
    name: 'an ignored member survives when the policy around it is replaced',
    desired: withAnnotations(withSpec(rich, { updateConfig: { parallelism: 4 } }), {
      'swarmkeeper/ignore-fields': 'updateConfig.delay, spec.updateConfig.order',
    }),
    observed: roundtrip,
    type: 'update',
    drift: [
      'spec.updateConfig.parallelism',
      'spec.updateConfig.failureAction',
      'spec.updateConfig.monitor',
      'spec.updateConfig.maxFailureRatio',
      SPEC_HASH,
    ],
    check: (action) => {
      if (action.type !== 'update') return;
      expect(action.body.UpdateConfig).toEqual({
        Parallelism: 4,
        Delay: 5_000_000_000,
        Order: 'start-first',
      });
    },
  },
  {
    // `--update-parallelism 0` ("all at once") is stored as a policy without Parallelism.
    name: 'a present policy without parallelism is "all at once", not the default',
    desired: withSpec(rich, {}, ['updateConfig']),
    observed: edited(roundtrip, (spec) => {
      spec.UpdateConfig = {
        Order: 'stop-first',
        FailureAction: 'pause',
        Monitor: 5_000_000_000,
      } as ServiceSpec['UpdateConfig'];
    }),
    type: 'update',
    drift: ['spec.updateConfig.parallelism', SPEC_HASH],
    check: (action) => {
      if (action.type === 'update') expect(action.body.UpdateConfig).toBeUndefined();
    },
  },
  {
    name: 'a setting removed from the manifest is removed from the service',
    desired: withSpec(rich, {}, ['stopGracePeriod', 'rollbackConfig']),
    observed: roundtrip,
    type: 'update',
    drift: ['spec.stopGracePeriod', 'spec.rollbackConfig.delay', SPEC_HASH],
    check: (action) => {
      if (action.type !== 'update') return;
      expect(containerSpec(action.body).StopGracePeriod).toBeUndefined();
      expect(action.body.RollbackConfig).toBeUndefined();
    },
  },
  {
    name: 'a mode change recreates the service',
    desired: withSpec(rich, { mode: 'global' }, ['replicas']),
    observed: roundtrip,
    type: 'recreate',
    drift: ['spec.mode', 'spec.replicas', SPEC_HASH],
    check: (action) => {
      if (action.type === 'recreate') expect(action.body.Mode).toEqual({ Global: {} });
    },
  },
  {
    name: 'a service swarmkeeper did not create is a conflict',
    desired: withAnnotations(adopt, { 'swarmkeeper/adopt': 'false' }),
    observed: observedService('service-cli-adopt.json'),
    type: 'conflict',
  },
  {
    name: 'adopting a matching service is an update of labels only',
    desired: adopt,
    observed: observedService('service-cli-adopt.json'),
    type: 'update',
    drift: [MANAGED, SPEC_HASH],
    labelsOnly: true,
    check: (action) => {
      if (action.type !== 'update') return;
      const before = observedService('service-cli-adopt.json').Spec;
      // Everything but the labels goes back exactly as Swarm holds it, CLI defaults included.
      expect({ ...action.body, Labels: undefined }).toEqual({ ...before, Labels: undefined });
      expect(action.body.Labels).toMatchObject({ ...before?.Labels, [LABELS.managed]: 'true' });
    },
  },
  {
    name: 'the adopted service, read back after that update, has no drift',
    desired: adopt,
    observed: observedService('service-adopted.json'),
    type: 'none',
  },
  {
    name: 'the updated service, read back, has no drift against the manifest it was updated to',
    desired: withSpec(rich, { replicas: 2, env: { A: '1', B: '2', URL: 'example.org', D: '4' } }, [
      'healthcheck',
    ]),
    observed: observedService('service-roundtrip-updated.json'),
    type: 'none',
  },
  {
    name: 'the updated service, against the manifest before the change, shows exactly that change',
    desired: rich,
    observed: observedService('service-roundtrip-updated.json'),
    type: 'update',
    drift: ['spec.replicas', 'spec.env', 'spec.healthcheck', SPEC_HASH],
  },
  {
    name: 'the defaults the CLI writes out read as a manifest that leaves them out',
    desired: resource('Service', {
      metadata: { name: 'skfix-minimal', annotations: { 'swarmkeeper/adopt': 'true' } },
      spec: { image: 'local/busybox:1' },
    }),
    observed: observedService('service-cli-minimal.json'),
    type: 'update',
    drift: [MANAGED, SPEC_HASH],
    labelsOnly: true,
  },
  {
    name: 'a CLI service with networks, configs, secrets and mounts matches the manifest for it',
    desired: resource('Service', {
      metadata: { name: 'skfix-wired', annotations: { 'swarmkeeper/adopt': 'true' } },
      spec: {
        image: 'local/busybox:1',
        command: ['sleep', '3600'],
        networks: [{ name: 'skfix-net', aliases: ['web'] }],
        configs: [{ source: 'skfix-conf', target: '/etc/nginx.conf' }],
        // The CLI wrote the relative name `skfix-secret-0000bbbb`, which the engine puts under /run/secrets.
        secrets: [{ source: 'skfix-secret', target: '/run/secrets/skfix-secret-0000bbbb' }],
        mounts: [
          { source: 'skfix-vol', target: '/data' },
          { type: 'tmpfs', target: '/tmpfs', tmpfs: { size: '1M' } },
        ],
        ports: [{ target: 80, published: 18080 }, { target: 8000 }],
        restartPolicy: { condition: 'on-failure' },
        updateConfig: { parallelism: 2 },
      },
    }),
    observed: observedService('service-cli-wired.json'),
    context: {
      networks: new Map([['skfix-net', 't36vo2rsxlif56xwhq4dncdjb']]),
      realisedConfigs: new Map([
        ['skfix-conf', { id: 'm5j78crt6iuy81avbqarb62wa', name: 'skfix-conf-0000aaaa' }],
      ]),
      realisedSecrets: new Map([
        ['skfix-secret', { id: 'l228yzu0i31jhsfebof6lr3wy', name: 'skfix-secret-0000bbbb' }],
      ]),
    },
    type: 'update',
    drift: [MANAGED, SPEC_HASH],
    labelsOnly: true,
  },
];

describe('planService against real inspect output', () => {
  it.each(cases)('$name', (c) => {
    const actions = planService(c.desired, c.observed, c.context ?? context);
    expect(actions).toHaveLength(1);
    const [action] = actions;
    if (action === undefined) throw new Error('no action');
    expect(action.type).toBe(c.type);
    if (c.drift !== undefined && 'drift' in action) {
      const paths = action.drift
        .map((d) => d.path)
        .filter((p) => p !== SPEC_HASH || c.drift?.includes(SPEC_HASH));
      expect(paths.sort()).toEqual([...c.drift].sort());
    }
    if (c.labelsOnly !== undefined && action.type === 'update') expect(action.labelsOnly).toBe(c.labelsOnly);
    c.check?.(action);
  });
});

describe('serviceSpecFor', () => {
  it('is exactly the spec the round-trip fixture was created from', () => {
    // Regenerate test/fixtures (README) whenever this changes: the fixture proves no perpetual diff.
    expect(serviceSpecFor(rich, context)).toEqual(readFixture('sent/service-rich.json'));
    expect(serviceSpecFor(minimal, context)).toEqual(readFixture('sent/service-minimal.json'));
  });

  it('puts bookkeeping labels on the service, never on the containers', () => {
    const spec = serviceSpecFor(rich, context);
    expect(spec.Labels).toMatchObject({ app: 'jupyterhub', [LABELS.managed]: 'true' });
    expect(spec.Labels?.[LABELS.specHash]).toMatch(/^[0-9a-f]{16}$/);
    expect(containerSpec(spec).Labels).toEqual({ role: 'hub' });
  });

  it('applies the documented defaults: replicated, one replica', () => {
    const spec = serviceSpecFor(
      resource('Service', { metadata: { name: 'x' }, spec: { image: 'nginx' } }),
      emptyContext(),
    );
    expect(spec.Mode).toEqual({ Replicated: { Replicas: 1 } });
    expect(spec.UpdateConfig).toBeUndefined();
    expect(spec.EndpointSpec).toBeUndefined();
  });

  it('translates units, env order and payload references', () => {
    const spec = serviceSpecFor(rich, context);
    const cs = containerSpec(spec);
    expect(cs.Env).toEqual(['A=1', 'B=2', 'URL=example.org']);
    expect(cs.StopGracePeriod).toBe(20_000_000_000);
    expect(cs.Secrets).toEqual([
      {
        File: { Name: '/run/secrets/skfix-rt-secret', UID: '1000', GID: '100', Mode: 0o400 },
        SecretID: context.realisedSecrets.get('skfix-rt-secret')?.id,
        SecretName: context.realisedSecrets.get('skfix-rt-secret')?.name,
      },
    ]);
    expect(spec.TaskTemplate?.Resources).toEqual({
      Limits: { NanoCPUs: 500_000_000, MemoryBytes: 64 * 1024 * 1024, Pids: 100 },
      Reservations: { NanoCPUs: 100_000_000, MemoryBytes: 16 * 1024 * 1024 },
    });
    expect(spec.TaskTemplate?.Networks).toEqual([
      { Target: context.networks.get('skfix-rt-net'), Aliases: ['jupyterhubserver', 'hub'] },
    ]);
  });

  it('refuses to refer to configs and secrets that are not realised', () => {
    expect(() => serviceSpecFor(rich, emptyContext())).toThrow(MissingDependencyError);
  });
});

describe('diffService', () => {
  it('reads network IDs back as names only through the context map', () => {
    // Translated without network IDs, the desired side names the network; Swarm stored its ID.
    const desired = serviceSpecFor(rich, { ...context, networks: new Map() });
    const observed = roundtrip.Spec ?? {};
    expect(diffService(desired, observed, { networks: context.networks }).fields).toEqual([]);
    const blind = diffService(desired, observed, {}).fields.map((f) => f.path);
    expect(blind).toEqual(['spec.networks']);
  });

  it('reports label-only drift apart from field drift', () => {
    const desired = serviceSpecFor(
      { ...rich, metadata: { ...rich.metadata, labels: { app: 'hub2' } } },
      context,
    );
    const diff = diffService(desired, roundtrip.Spec ?? {}, { networks: context.networks });
    expect(diff.fields).toEqual([]);
    expect(diff.labels.map((l) => l.path)).toEqual(['metadata.labels["app"]']);
  });
});

describe('planService without an observed object', () => {
  it('creates from the translation', () => {
    expect(planService(rich, undefined, context)).toEqual([
      { type: 'create', kind: 'Service', body: serviceSpecFor(rich, context) },
    ]);
  });

  it('waits for networks, configs and secrets that do not exist yet', () => {
    expect(planService(rich, undefined, emptyContext())).toEqual([
      { type: 'wait', missing: ['Network/skfix-rt-net', 'Config/skfix-rt-conf', 'Secret/skfix-rt-secret'] },
    ]);
  });
});

/**
 * No input makes the pure functions that read outside data throw anything but a typed
 * SwarmkeeperError: schema validation, the Redis record codec, unit parsers, manifest parsing,
 * key and event parsing, image references, folder naming, and planning against whatever the engine
 * might hand back. Where they return a verdict, the verdict is checked too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ContainerInspectInfo, NetworkInspectInfo, Service, VolumeInspectInfo } from 'dockerode';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysForEvent } from '../../src/controller/event-keys.js';
import {
  RESERVED_FIELDS,
  decodeRecord,
  decodeResource,
  decodeStatus,
  encodeResource,
} from '../../src/desired/codec.js';
import { KeySpace } from '../../src/desired/keys.js';
import { SwarmkeeperError } from '../../src/errors.js';
import { folderName, segmentProblem } from '../../src/homes/naming.js';
import { parseXfsProjectReport } from '../../src/homes/quota/xfs-report.js';
import { OBSERVED_EVENT_TYPES } from '../../src/observed/events.js';
import {
  imagesEqual,
  parseImageReference,
  planConfig,
  planContainer,
  planNetwork,
  planSecret,
  planService,
  planVolume,
  type ObservedPayload,
} from '../../src/reconcile/index.js';
import { KIND_DEFINITIONS, KINDS, isKind, type Kind } from '../../src/resources/kinds/index.js';
import { parseManifestText } from '../../src/resources/manifest.js';
import { API_VERSION } from '../../src/resources/metadata.js';
import { validateResource, type Resource, type ResourceOf } from '../../src/resources/resource.js';
import { parseBytes, parseDurationNanos, parseNanoCpus } from '../../src/resources/units.js';
import { manifests, roundtripContext } from '../unit/reconcile/fixtures.js';

const RUNS = Number(process.env.SWARMKEEPER_FUZZ_RUNS ?? 200);
const runs = { numRuns: RUNS };

/** Runs `f`; anything it throws must be a SwarmkeeperError. Returns what it returned, if it did. */
function typedOnly<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (error) {
    expect(error).toBeInstanceOf(SwarmkeeperError);
    return undefined;
  }
}

async function typedOnlyAsync<T>(f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (error) {
    expect(error).toBeInstanceOf(SwarmkeeperError);
    return undefined;
  }
}

/** Keys that trip careless object handling. */
const nastyKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  ' ',
);
const kindArb = fc.oneof(
  fc.constantFrom(...KINDS),
  fc.string(),
  fc.constantFrom('S\u0435rvice', 'service', '__proto__'),
);
const jsonish = fc.jsonValue({ maxDepth: 4 });

/** Documents shaped like manifests, with any part of them wrong. */
const documentArb = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  fc.record(
    {
      apiVersion: fc.oneof(fc.constant(API_VERSION), jsonish),
      kind: fc.oneof(kindArb, jsonish),
      metadata: fc.oneof(
        fc.record(
          {
            name: fc.oneof(fc.string(), jsonish),
            labels: fc.oneof(
              fc.dictionary(fc.oneof(fc.string(), nastyKey), fc.oneof(fc.string(), jsonish)),
              jsonish,
            ),
            annotations: jsonish,
          },
          { requiredKeys: [] },
        ),
        jsonish,
      ),
      spec: fc.oneof(fc.dictionary(fc.oneof(fc.string(), nastyKey), jsonish), jsonish),
      extra: jsonish,
    },
    { requiredKeys: [] },
  ),
);

/** A raw hash value: JSON of any shape, numbers, booleans, broken JSON, or any text. */
const rawValue = fc.oneof(
  jsonish.map((v) => JSON.stringify(v)),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.double().map(String),
  fc.constantFrom('true', 'false', '1e400', '-0', '{', '[', '"', '""', 'null', '0x10', '1Zi'),
);
const hashFor = (kind: string): fc.Arbitrary<Record<string, string>> => {
  const fields = isKind(kind) ? Object.keys(KIND_DEFINITIONS[kind].spec.shape) : [];
  const fieldArb = fc.oneof(
    { weight: 3, arbitrary: fields.length > 0 ? fc.constantFrom(...fields) : fc.string() },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...Object.values(RESERVED_FIELDS), '_x', '__proto__', 'constructor'),
    },
    { weight: 1, arbitrary: fc.string() },
  );
  return fc.dictionary(fieldArb, rawValue, { maxKeys: 6, noNullPrototype: true });
};
const recordArb = kindArb.chain((kind) => fc.tuple(fc.constant(kind), fc.string(), hashFor(kind)));

describe('validation and the record codec never throw', () => {
  it('validateResource returns a verdict for any document, naming every problem', () => {
    fc.assert(
      fc.property(documentArb, (document) => {
        const result = validateResource(document);
        if (result.ok) {
          expect(KINDS).toContain(result.resource.kind);
          return;
        }
        expect(result.issues.length).toBeGreaterThan(0);
        for (const issue of result.issues) {
          expect(typeof issue.path).toBe('string');
          expect(issue.message.trim()).not.toBe('');
        }
      }),
      runs,
    );
  });

  it('decodeResource and decodeRecord return a verdict for any hash; what decodes, encodes back to itself', () => {
    fc.assert(
      fc.property(recordArb, ([kind, name, hash]) => {
        const decoded = decodeResource(kind, name, hash);
        const record = decodeRecord({ key: `p:desired:${kind}:${name}`, kind, name, hash });
        expect(record.ok).toBe(decoded.ok);
        if (!decoded.ok) {
          expect(decoded.issues.length).toBeGreaterThan(0);
          for (const issue of decoded.issues) expect(issue.message.trim()).not.toBe('');
          return;
        }
        const again = decodeResource(kind, name, encodeResource(decoded.resource));
        expect(again).toEqual(decoded);
      }),
      runs,
    );
  });

  it('decodeStatus reads any hash, dropping what it does not understand', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(
            fc.constantFrom('sync', 'health', 'message', 'lastDrift', 'usedBytes', 'quotaBytes'),
            fc.string(),
          ),
          rawValue,
          { noNullPrototype: true },
        ),
        (hash) => {
          const status = decodeStatus(hash);
          if (status?.usedBytes !== undefined) expect(Number.isSafeInteger(status.usedBytes)).toBe(true);
          for (const entry of status?.lastDrift ?? []) expect(typeof entry.path).toBe('string');
        },
      ),
      runs,
    );
  });
});

describe('unit parsers answer a number in range or nothing', () => {
  const sizeText = fc.oneof(
    fc.string(),
    fc
      .tuple(
        fc.oneof(fc.nat().map(String), fc.double().map(String)),
        fc.constantFrom('', 'k', 'Ki', 'M', 'G', 'Ti', 'P', 'Zi', 'b'),
      )
      .map(([n, u]) => n + u),
  );
  it('parseBytes', () => {
    fc.assert(
      fc.property(fc.oneof(sizeText, fc.double(), fc.integer()), (input) => {
        const bytes = parseBytes(input);
        if (bytes !== undefined) {
          expect(Number.isSafeInteger(bytes)).toBe(true);
          expect(bytes).toBeGreaterThanOrEqual(0);
        }
      }),
      runs,
    );
  });

  it('parseNanoCpus', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.double().map(String), fc.double(), fc.integer()), (input) => {
        const nanos = parseNanoCpus(input);
        if (nanos !== undefined) {
          expect(Number.isSafeInteger(nanos)).toBe(true);
          expect(nanos).toBeGreaterThanOrEqual(0);
          expect(nanos).toBeLessThanOrEqual(4096e9);
        }
      }),
      runs,
    );
  });

  it('parseDurationNanos', () => {
    const durationText = fc.oneof(
      fc.string(),
      fc
        .array(
          fc.tuple(
            fc.oneof(fc.nat().map(String), fc.double({ min: 0 }).map(String)),
            fc.constantFrom('ns', 'us', 'µs', 'ms', 's', 'm', 'h', 'd', ''),
          ),
          { maxLength: 4 },
        )
        .map((parts) => parts.map(([n, u]) => n + u).join('')),
    );
    fc.assert(
      fc.property(durationText, (input) => {
        const nanos = parseDurationNanos(input);
        if (nanos !== undefined) {
          expect(Number.isSafeInteger(nanos)).toBe(true);
          expect(nanos).toBeGreaterThanOrEqual(0);
        }
      }),
      runs,
    );
  });
});

describe('text from outside', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sk-fuzz-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const yamlish = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc
      .array(
        fc.oneof(
          fc.constantFrom(
            'apiVersion: swarmkeeper/v1',
            'kind: Service',
            'kind: Config',
            'metadata: {name: web}',
            'metadata:',
            '  name: &n web',
            'spec:',
            '  image: *n',
            '  replicas: two',
            '  file: ../../etc/hostname',
            '---',
            '- *a',
            'a: &a [*a]',
            '? [x]',
            '!!binary aGk=',
            '!!js/function "f"',
            '%YAML 1.2',
            'spec: {image: x, image: y}',
            '<<: *n',
          ),
          fc.string({ maxLength: 20 }),
        ),
        { maxLength: 12 },
      )
      .map((lines) => lines.join('\n')),
    jsonish.map((v) => JSON.stringify(v)),
  );

  it('parseManifestText resolves with resources or located issues for any text', async () => {
    await fc.assert(
      fc.asyncProperty(yamlish, async (text) => {
        const parsed = await typedOnlyAsync(() => parseManifestText(text, 'fuzz.yaml', dir));
        for (const issue of parsed?.issues ?? []) {
          expect(issue.location).toMatch(/^fuzz\.yaml(:\d+)?$/);
          expect(issue.message.trim()).not.toBe('');
        }
      }),
      { numRuns: Math.max(20, Math.floor(RUNS / 2)) },
    );
  });

  it('parseXfsProjectReport reads any text or refuses it with a typed error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .array(
              fc.oneof(
                fc.constantFrom(
                  'Project quota on /srv (/dev/sdb)',
                  'Project ID   Used   Soft   Hard  Warn/Grace',
                  '---------- ---------------',
                  '#1001 100 0 2048 00 [--------]',
                  'jupyterhub-user-alice 5 0 0 00 [------]',
                  '',
                ),
                fc.string({ maxLength: 40 }),
              ),
              { maxLength: 8 },
            )
            .map((lines) => lines.join('\n')),
        ),
        (text) => {
          typedOnly(() => parseXfsProjectReport(text));
        },
      ),
      runs,
    );
  });

  it('KeySpace.parseDesired splits any key, and reads back every key it spells', () => {
    const keys = new KeySpace('sk:test');
    fc.assert(
      fc.property(fc.string(), fc.constantFrom(...KINDS), fc.string(), (raw, kind, name) => {
        const parsed = keys.parseDesired(raw);
        if (parsed) expect(parsed.knownKind).toBe(isKind(parsed.kind));
        expect(keys.parseDesired(keys.desired(kind, name))).toEqual({ kind, name, knownKind: true });
      }),
      runs,
    );
  });

  it('keysForEvent answers keys of real kinds for any event', () => {
    const event = fc.record(
      {
        type: fc.constantFrom(...OBSERVED_EVENT_TYPES),
        action: fc.oneof(
          fc.string(),
          fc.constantFrom('create', 'destroy', 'health_status: healthy', 'exec_start: sh', ':'),
        ),
        id: fc.string(),
        name: fc.oneof(fc.string(), fc.constantFrom('web-0badc0de', 'a/b', '')),
        labels: fc.dictionary(
          fc.oneof(fc.string(), fc.constant('com.docker.swarm.service.name')),
          fc.string(),
          { noNullPrototype: true },
        ),
        attributes: fc.dictionary(fc.string(), fc.string(), { noNullPrototype: true }),
        time: fc.integer(),
      },
      { requiredKeys: ['type', 'action', 'id', 'attributes', 'time'] },
    );
    fc.assert(
      fc.property(event, (e) => {
        const keys = keysForEvent(e);
        if ('allOf' in keys) expect(keys.allOf).toBe('Service');
        else for (const key of keys.keys) expect(KINDS).toContain(key.slice(0, key.indexOf('/')));
      }),
      runs,
    );
  });

  it('image references: any text parses, and every reference equals itself and its pinned form', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.stringMatching(/^[a-z0-9.:/_-]{1,30}(@sha256:[0-9a-f]{4})?$/)),
        (image) => {
          parseImageReference(image);
          expect(imagesEqual(image, image)).toBe(true);
          const ref = parseImageReference(image);
          // A pin is appended to references as the CLI writes them: no spaces around them.
          if (ref.digest === undefined && /^\S+$/.test(image) && !image.includes('@')) {
            expect(
              imagesEqual(
                image,
                `${image}${ref.tag === undefined ? ':latest' : ''}@sha256:${'ab'.repeat(32)}`,
              ),
            ).toBe(true);
          }
        },
      ),
      runs,
    );
  });

  it('folderName refuses or answers one safe entry for any username, under every naming', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.constantFrom('..', '.', '../x', 'a/b', 'a\0b', '\uff0e\uff0e'),
        ),
        fc.constantFrom('plain' as const, 'md5' as const, 'escaped' as const),
        (username, naming) => {
          const result = folderName(username, naming);
          if (result.ok) expect(segmentProblem(result.folder)).toBeUndefined();
        },
      ),
      runs,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Planning against whatever the engine might report

const roundtrip = manifests('roundtrip.json');
const adopt = (r: Resource): Resource => ({
  ...r,
  metadata: { ...r.metadata, annotations: { ...r.metadata.annotations, 'swarmkeeper/adopt': 'true' } },
});
const of = <K extends Kind>(kind: K): ResourceOf<K>[] =>
  [...roundtrip, ...roundtrip.map(adopt)].filter((r): r is ResourceOf<K> => r.kind === kind);

/** An engine object: the members planning reads, each either sensible or any JSON at all. */
const garbage = fc.jsonValue({ maxDepth: 3 });
const member = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 2, arbitrary }, { weight: 1, arbitrary: garbage });
const objectOf = (keys: readonly string[]): fc.Arbitrary<Record<string, unknown>> =>
  fc.dictionary(fc.constantFrom(...keys), garbage, { maxKeys: keys.length, noNullPrototype: true });
const labelsArb = member(
  fc.dictionary(
    fc.constantFrom('io.swarmkeeper.managed', 'io.swarmkeeper.spec-hash', 'app', 'length'),
    fc.constantFrom('true', 'x'),
    {
      noNullPrototype: true,
    },
  ),
);

describe('planning reads any engine object without throwing', () => {
  const context = roundtripContext();

  it('planService against any ServiceSpec', () => {
    const spec = fc.record(
      {
        Name: member(fc.string()),
        Labels: labelsArb,
        TaskTemplate: member(
          fc.record(
            {
              ContainerSpec: member(
                objectOf([
                  'Image',
                  'Env',
                  'Mounts',
                  'Configs',
                  'Secrets',
                  'Healthcheck',
                  'HealthCheck',
                  'CapabilityAdd',
                  'Labels',
                  'Args',
                ]),
              ),
              Resources: member(objectOf(['Limits', 'Reservations'])),
              RestartPolicy: member(objectOf(['Condition', 'Delay', 'MaxAttempts', 'Window'])),
              Placement: member(objectOf(['Constraints', 'Preferences', 'MaxReplicas'])),
              Networks: garbage,
            },
            { requiredKeys: [] },
          ),
        ),
        Mode: member(objectOf(['Replicated', 'Global', 'ReplicatedJob'])),
        UpdateConfig: member(objectOf(['Parallelism', 'Delay', 'Monitor', 'MaxFailureRatio', 'Order'])),
        RollbackConfig: garbage,
        EndpointSpec: member(objectOf(['Mode', 'Ports'])),
        Networks: garbage,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...of('Service')),
        spec,
        member(objectOf(['Index'])),
        (resource, observedSpec, version) => {
          const observed = { ID: 'svc1', Version: version, Spec: observedSpec } as unknown as Service;
          const actions = typedOnly(() => planService(resource, observed, context));
          if (actions) expect(actions.length).toBeGreaterThan(0);
        },
      ),
      runs,
    );
  });

  it('planNetwork, planVolume and planContainer against any inspect output', () => {
    const network = fc.record(
      {
        Name: garbage,
        Id: fc.string(),
        Driver: member(fc.constantFrom('overlay', 'bridge')),
        IPAM: member(objectOf(['Driver', 'Config'])),
        Options: member(fc.dictionary(fc.string(), fc.string())),
        Labels: labelsArb,
        Attachable: garbage,
        Internal: garbage,
      },
      { requiredKeys: ['Id'] },
    );
    const volume = fc.record(
      { Name: fc.string(), Driver: garbage, Options: garbage, Labels: labelsArb },
      { requiredKeys: ['Name'] },
    );
    const container = fc.record({
      Id: fc.string(),
      State: fc.record({ Running: garbage }),
      Config: fc.record(
        {
          Image: garbage,
          Env: garbage,
          Cmd: garbage,
          Entrypoint: garbage,
          Labels: labelsArb,
          Healthcheck: garbage,
          Hostname: garbage,
          User: garbage,
          WorkingDir: garbage,
        },
        { requiredKeys: [] },
      ),
      HostConfig: member(
        objectOf([
          'PortBindings',
          'Mounts',
          'Binds',
          'CapAdd',
          'CapDrop',
          'RestartPolicy',
          'NanoCpus',
          'Memory',
          'PidsLimit',
        ]),
      ),
      NetworkSettings: fc.record({ Networks: garbage }),
    });
    fc.assert(
      fc.property(network, volume, container, (n, v, c) => {
        for (const resource of of('Network'))
          typedOnly(() => planNetwork(resource, n as unknown as NetworkInspectInfo));
        for (const resource of of('Volume'))
          typedOnly(() => planVolume(resource, v as unknown as VolumeInspectInfo));
        for (const resource of of('Container'))
          typedOnly(() => planContainer(resource, c as unknown as ContainerInspectInfo, context));
      }),
      runs,
    );
  });

  it('planConfig and planSecret against any listing', () => {
    const payload = fc.record(
      {
        ID: fc.string(),
        Version: member(objectOf(['Index'])),
        // Data is the one member the engine always types: base64 text, or left out (`omitempty`).
        Spec: member(
          fc.record(
            {
              Name: member(fc.constantFrom('skfix-rt-conf-028fa674', 'skfix-rt-secret-4db147a5', 'x')),
              Labels: labelsArb,
              Data: fc.oneof(fc.base64String(), fc.string()),
            },
            { requiredKeys: [] },
          ),
        ),
      },
      { requiredKeys: ['ID'] },
    );
    fc.assert(
      fc.property(fc.array(payload, { maxLength: 4 }), (listing) => {
        const observed = listing as unknown as ObservedPayload[];
        for (const resource of of('Config')) typedOnly(() => planConfig(resource, observed));
        for (const resource of of('Secret')) typedOnly(() => planSecret(resource, observed));
      }),
      runs,
    );
  });
});

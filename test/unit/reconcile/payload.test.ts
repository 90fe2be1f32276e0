import { describe, expect, it } from 'vitest';
import {
  configCreateFor,
  planConfig,
  planSecret,
  realisedPayloadName,
  secretCreateFor,
  type ObservedPayload,
} from '../../../src/reconcile/index.js';
import { LABELS } from '../../../src/resources/metadata.js';
import type { ResourceOf } from '../../../src/resources/resource.js';
import { copy, manifest, observedPayload, resource } from './fixtures.js';

const conf = manifest('roundtrip.json', 'Config', 'skfix-rt-conf');
const secret = manifest('roundtrip.json', 'Secret', 'skfix-rt-secret');
const confObserved = observedPayload('config-roundtrip.json');
const secretObserved = observedPayload('secret-roundtrip.json');

function withData(r: ResourceOf<'Config'>, data: string): ResourceOf<'Config'> {
  return { ...r, spec: { data } };
}

function withLabels<R extends ResourceOf<'Config'> | ResourceOf<'Secret'>>(
  r: R,
  labels: Record<string, string>,
): R {
  return { ...r, metadata: { ...r.metadata, labels } };
}

describe('configCreateFor / secretCreateFor', () => {
  it('name the object after the content and label it for its resource', () => {
    const spec = configCreateFor(conf);
    expect(spec.Name).toBe(realisedPayloadName('skfix-rt-conf', conf.spec.data ?? ''));
    expect(spec.Name).toMatch(/^skfix-rt-conf-[0-9a-f]{8}$/);
    expect(spec.Labels).toMatchObject({ [LABELS.managed]: 'true', [LABELS.resource]: 'skfix-rt-conf' });
    expect(spec.Labels[LABELS.specHash]?.startsWith(spec.Name.slice(-8))).toBe(true);
    expect(Buffer.from(spec.Data, 'base64').toString('utf8')).toBe(conf.spec.data);
  });

  it('reproduce the names of the objects created for the fixtures', () => {
    expect(configCreateFor(conf).Name).toBe(confObserved.Spec?.Name);
    expect(secretCreateFor(secret).Name).toBe(secretObserved.Spec?.Name);
  });

  it('encode UTF-8 content as the engine stores it', () => {
    const text = 'héllo ✓ 𝄞\n';
    const spec = secretCreateFor(resource('Secret', { metadata: { name: 's' }, spec: { data: text } }));
    expect(spec.Data).toBe(Buffer.from(text, 'utf8').toString('base64'));
  });

  it('refuse a record without data', () => {
    const unread = resource('Config', { metadata: { name: 'c' }, spec: { file: 'nginx.conf' } });
    expect(() => configCreateFor(unread)).toThrow(/spec\.data/);
  });
});

describe('planConfig / planSecret against real inspect output', () => {
  const older: ObservedPayload = {
    ID: 'old0000000000000000000000',
    Version: { Index: 3 },
    Spec: {
      Name: 'skfix-rt-conf-00000000',
      Labels: {
        [LABELS.managed]: 'true',
        [LABELS.resource]: 'skfix-rt-conf',
        [LABELS.specHash]: '00000000ffffffff',
      },
    },
  };
  const foreign: ObservedPayload = {
    ID: 'foreign000000000000000000',
    Spec: { Name: 'skfix-rt-conf-legacy', Labels: { [LABELS.resource]: 'skfix-rt-conf' } },
  };

  it.each([
    { name: 'nothing observed: create', actions: () => planConfig(conf, []), types: ['create'] },
    {
      name: 'the round-tripped config: nothing to do',
      actions: () => planConfig(conf, [confObserved]),
      types: ['none'],
    },
    {
      name: 'the round-tripped secret: nothing to do',
      actions: () => planSecret(secret, [secretObserved]),
      types: ['none'],
    },
    {
      name: 'new content: create the new version, prune the older ones swarmkeeper made',
      actions: () => planConfig(withData(conf, 'listen 8080;\n'), [confObserved, older, foreign]),
      types: ['create', 'prune', 'prune'],
    },
    {
      name: 'current version present: prune only older managed versions',
      actions: () => planConfig(conf, [older, confObserved, foreign]),
      types: ['none', 'prune'],
    },
    {
      name: 'labels changed: relabel in place',
      actions: () => planConfig(withLabels(conf, { tier: 'edge' }), [confObserved]),
      types: ['update'],
    },
    {
      name: 'the relabelled config, read back: nothing to do',
      actions: () =>
        planConfig(withLabels(conf, { tier: 'edge' }), [observedPayload('config-relabelled.json')]),
      types: ['none'],
    },
    {
      name: 'the relabelled secret, read back: nothing to do',
      actions: () =>
        planSecret(withLabels(secret, { tier: 'edge' }), [observedPayload('secret-relabelled.json')]),
      types: ['none'],
    },
    {
      name: 'an object of the realised name that swarmkeeper did not make: conflict',
      actions: () => {
        const unmanaged = copy(confObserved) as {
          Spec: { Labels: Record<string, string> };
        } & ObservedPayload;
        unmanaged.Spec.Labels = {};
        return planConfig(conf, [unmanaged]);
      },
      types: ['conflict'],
    },
    {
      name: 'same name, different content (a 32-bit suffix collision): conflict, never silently reused',
      actions: () => {
        const collided = copy(confObserved) as { Spec: { Data: string } } & ObservedPayload;
        collided.Spec.Data = Buffer.from('something else').toString('base64');
        return planConfig(conf, [collided]);
      },
      types: ['conflict'],
    },
  ])('$name', ({ actions, types }) => {
    expect(actions().map((a) => a.type)).toEqual(types);
  });

  it('relabels with a body that carries no Data (the engine refuses one that does)', () => {
    const [action] = planSecret(withLabels(secret, { tier: 'edge' }), [secretObserved]);
    if (action?.type !== 'update') throw new Error(`expected update, got ${action?.type}`);
    expect(action.labelsOnly).toBe(true);
    expect(action.version).toBe(secretObserved.Version?.Index);
    expect(action.body).toEqual({
      Name: secretObserved.Spec?.Name,
      Labels: { ...secretObserved.Spec?.Labels, tier: 'edge' },
    });
  });

  it('never puts secret content in drift', () => {
    const changed = copy(secretObserved) as { Spec: { Labels: Record<string, string> } } & ObservedPayload;
    changed.Spec.Labels[LABELS.specHash] = 'ffffffffffffffff';
    const [action] = planSecret(secret, [changed]);
    expect(action?.type).toBe('conflict');
    expect(JSON.stringify(action)).not.toContain('hunter2');
  });
});

import { describe, expect, it } from 'vitest';
import {
  base64,
  canonicalJson,
  fnv1a64,
  hashValue,
  imagesEqual,
  parseImageReference,
} from '../../../src/reconcile/index.js';
import { fromBase64, utf8 } from '../../../src/reconcile/hash.js';

describe('fnv1a64', () => {
  // Reference values of FNV-1a 64 (draft-eastlake-fnv, and the Go/Python implementations).
  it.each([
    ['', 'cbf29ce484222325'],
    ['a', 'af63dc4c8601ec8c'],
    ['foobar', '85944171f73967e8'],
    ['hello world', '779a65e7023cd2e7'],
  ])('%j → %s', (input, expected) => {
    expect(fnv1a64(input)).toBe(expected);
  });

  it('hashes UTF-8 bytes, as TextEncoder encodes them', () => {
    for (const text of ['é', '✓', '𝄞', 'a\u{d800}b']) {
      expect([...utf8(text)]).toEqual([...new TextEncoder().encode(text)]);
    }
  });

  it('is stable: these values are persisted in labels and object names', () => {
    expect(hashValue({ image: 'nginx', replicas: 2 })).toBe(hashValue({ replicas: 2, image: 'nginx' }));
    // Cross-checked with an independent FNV-1a 64 over '{"image":"nginx","replicas":2}'.
    expect(hashValue({ image: 'nginx', replicas: 2 })).toBe('26b6523b788771b5');
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: undefined }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,{"z":1}]},"b":1}',
    );
  });
});

describe('base64', () => {
  it.each(['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar', 'héllo ✓'])(
    '%j matches Buffer both ways',
    (text) => {
      const encoded = base64(text);
      expect(encoded).toBe(Buffer.from(text, 'utf8').toString('base64'));
      expect(Buffer.from(fromBase64(encoded)).toString('utf8')).toBe(text);
    },
  );
});

describe('image references', () => {
  const digest = `sha256:${'c'.repeat(64)}`;
  const other = `sha256:${'d'.repeat(64)}`;
  it.each([
    ['nginx:1.27', `nginx:1.27@${digest}`, true],
    ['nginx', `nginx:latest@${digest}`, true],
    ['nginx', 'nginx:latest', true],
    ['nginx:latest', 'nginx', true],
    ['docker.io/library/nginx:1.27', `nginx:1.27@${digest}`, true],
    ['nginx:1.27', 'nginx:1.28', false],
    ['nginx:1.27', `nginx:1.28@${digest}`, false],
    ['nginx', `nginx@${digest}`, false],
    [`nginx:1.27@${digest}`, `nginx:1.27@${digest}`, true],
    [`nginx@${digest}`, `nginx:1.27@${digest}`, true],
    [`nginx:1.27@${digest}`, `nginx:1.27@${other}`, false],
    [`nginx:1.27@${digest}`, 'nginx:1.27', false],
    ['registry:5000/app', 'registry:5000/app:latest', true],
    ['jupyterhub/jupyterhub:0.8.0', 'jupyterhub/jupyterhub:0.8.0', true],
    ['local/busybox:1', 'busybox:1', false],
  ])('desired %s, observed %s → %s', (desired, observed, equal) => {
    expect(imagesEqual(desired, observed)).toBe(equal);
  });

  it('keeps a registry port out of the tag', () => {
    expect(parseImageReference('registry:5000/app')).toEqual({ name: 'registry:5000/app' });
    expect(parseImageReference(`registry:5000/app:2@${digest}`)).toEqual({
      name: 'registry:5000/app',
      tag: '2',
      digest,
    });
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestReadError } from '../../src/errors.js';
import { loadManifests, MAX_MANIFEST_BYTES, parseManifestText } from '../../src/resources/manifest.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sk-manifest-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const parse = (text: string) => parseManifestText(text, 'm.yaml', dir);

describe('parseManifestText', () => {
  it('pins a type error to its field path and line', async () => {
    const result = await parse(
      [
        'apiVersion: swarmkeeper/v1',
        'kind: Service',
        'metadata:',
        '  name: nginx',
        'spec:',
        '  image: nginx',
        '  replicas: two',
      ].join('\n'),
    );
    expect(result.resources).toEqual([]);
    expect(result.issues).toEqual([expect.objectContaining({ path: 'spec.replicas', location: 'm.yaml:7' })]);
  });

  it('reads several kinds from one multi-document file, with each document located', async () => {
    const result = await parse(
      [
        'apiVersion: swarmkeeper/v1',
        'kind: Network',
        'metadata: {name: jupyterhub}',
        'spec: {attachable: true}',
        '---',
        'apiVersion: swarmkeeper/v1',
        'kind: User',
        'metadata: {name: alice}',
        'spec: {email: alice@example.org}',
      ].join('\n'),
    );
    expect(result.issues).toEqual([]);
    expect(result.resources.map((r) => [r.resource.kind, r.location])).toEqual([
      ['Network', 'm.yaml:1'],
      ['User', 'm.yaml:6'],
    ]);
  });

  it('refuses duplicate keys', async () => {
    const result = await parse(
      'apiVersion: swarmkeeper/v1\nkind: Network\nkind: Volume\nmetadata: {name: n}\nspec: {}\n',
    );
    expect(result.resources).toEqual([]);
    expect(result.issues[0]?.message).toMatch(/unique/i);
    expect(result.issues[0]?.location).toBe('m.yaml:3');
  });

  it('refuses a billion-laughs alias bomb without expanding it', async () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i += 1) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const text = `apiVersion: swarmkeeper/v1\nkind: Network\nmetadata: {name: n}\nspec: {}\nbomb:\n${levels.map((l) => `  ${l}`).join('\n')}\n`;
    const started = Date.now();
    const result = await parse(text);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result.resources).toEqual([]);
    expect(result.issues[0]?.message).toMatch(/alias/i);
  });

  it('refuses an alias bomb hidden inside a spec field, reporting it at the document', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i += 1) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const text = [
      'apiVersion: swarmkeeper/v1',
      'kind: Service',
      'metadata: {name: web}',
      'spec:',
      '  image: nginx',
      '  containerLabels:',
      ...levels.map((l) => `    ${l}`),
      '  command: *j',
    ].join('\n');
    const started = Date.now();
    const result = await parse(text);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result.resources).toEqual([]);
    expect(result.issues).toEqual([expect.objectContaining({ location: 'm.yaml:1' })]);
    expect(result.issues[0]?.message).toMatch(/alias/i);
  });

  it('refuses a duplicate key nested in the spec, at its line', async () => {
    const result = await parse(
      'apiVersion: swarmkeeper/v1\nkind: Service\nmetadata: {name: web}\nspec:\n  image: a\n  replicas: 1\n  replicas: 2\n',
    );
    expect(result.resources).toEqual([]);
    expect(result.issues[0]?.message).toMatch(/unique/i);
    expect(result.issues[0]?.location).toBe('m.yaml:7');
  });

  it('loads the good documents of a multi-kind file and pins each bad one to its own line', async () => {
    const result = await parse(
      [
        'apiVersion: swarmkeeper/v1',
        'kind: Network',
        'metadata: {name: jupyterhub}',
        '---',
        'apiVersion: swarmkeeper/v1',
        'kind: Sеrvice', // Cyrillic е
        'metadata: {name: web}',
        '---',
        'apiVersion: swarmkeeper/v1',
        'kind: User',
        'metadata: {name: ../root}',
        '---',
        'apiVersion: swarmkeeper/v1',
        'kind: Volume',
        'metadata: {name: data}',
        'spec: {reclaimPolicy: Delete}',
      ].join('\n'),
    );
    expect(result.resources.map((r) => `${r.resource.kind}/${r.resource.metadata.name}`)).toEqual([
      'Network/jupyterhub',
      'Volume/data',
    ]);
    expect(result.issues.map((i) => [i.path, i.location])).toEqual([
      ['kind', 'm.yaml:6'],
      ['metadata.name', 'm.yaml:11'],
      ['metadata.name', 'm.yaml:11'],
    ]);
  });

  it.each([
    ['missing', 'kind: Network\nmetadata: {name: n}\n', 'm.yaml:1'],
    ['a later version', 'apiVersion: swarmkeeper/v2\nkind: Network\nmetadata: {name: n}\n', 'm.yaml:1'],
    ['Kubernetes', 'apiVersion: apps/v1\nkind: Network\nmetadata: {name: n}\n', 'm.yaml:1'],
  ])('refuses an apiVersion that is %s', async (_label, text, location) => {
    const result = await parse(text);
    expect(result.resources).toEqual([]);
    expect(result.issues).toEqual([expect.objectContaining({ path: 'apiVersion', location })]);
  });

  it('refuses text larger than the limit without parsing it', async () => {
    const text = `# ${'x'.repeat(MAX_MANIFEST_BYTES)}\n`;
    const started = Date.now();
    const result = await parse(text);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(result.resources).toEqual([]);
    expect(result.issues).toEqual([
      { path: '', message: `larger than ${MAX_MANIFEST_BYTES} bytes`, location: 'm.yaml' },
    ]);
  });

  it('refuses a wrong apiVersion, naming the field', async () => {
    const result = await parse('apiVersion: v1\nkind: Network\nmetadata: {name: n}\nspec: {}\n');
    expect(result.issues).toEqual([expect.objectContaining({ path: 'apiVersion', location: 'm.yaml:1' })]);
  });

  it('refuses text that is not YAML', async () => {
    const result = await parse('kind: [unclosed\n');
    expect(result.resources).toEqual([]);
    expect(result.issues.length).toBeGreaterThan(0);
  });

  it('reads JSON documents too', async () => {
    const result = await parse(
      '{"apiVersion":"swarmkeeper/v1","kind":"Volume","metadata":{"name":"data"},"spec":{}}',
    );
    expect(result.issues).toEqual([]);
    expect(result.resources[0]?.resource.metadata.name).toBe('data');
  });

  it('reads a Config file next to the manifest into data', async () => {
    await writeFile(path.join(dir, 'nginx.conf'), 'server { listen 80; }\n');
    const result = await parse(
      'apiVersion: swarmkeeper/v1\nkind: Config\nmetadata: {name: nginx-conf}\nspec: {file: nginx.conf}\n',
    );
    expect(result.issues).toEqual([]);
    expect(result.resources[0]?.resource.spec).toEqual({ data: 'server { listen 80; }\n' });
  });

  it('reports a missing Config file at spec.file', async () => {
    const result = await parse(
      'apiVersion: swarmkeeper/v1\nkind: Config\nmetadata: {name: c}\nspec: {file: missing.conf}\n',
    );
    expect(result.issues).toHaveLength(1);
    expect(result.issues[0]).toMatchObject({ path: 'spec.file', location: 'm.yaml:4' });
    expect(result.issues[0]?.message).toMatch(/no such file/);
  });
});

describe('loadManifests', () => {
  it('reads a folder in name order, reports duplicates across files, and skips other files', async () => {
    const network = 'apiVersion: swarmkeeper/v1\nkind: Network\nmetadata: {name: jupyterhub}\nspec: {}\n';
    await writeFile(path.join(dir, 'a.yaml'), network);
    await writeFile(path.join(dir, 'b.yml'), network);
    await writeFile(path.join(dir, 'notes.txt'), 'not a manifest');
    const result = await loadManifests([dir]);
    expect(result.resources).toHaveLength(2);
    expect(result.issues).toEqual([
      expect.objectContaining({ path: 'metadata.name', location: `${path.join(dir, 'b.yml')}:1` }),
    ]);
  });

  it('refuses a file larger than the limit before reading it', async () => {
    const file = path.join(dir, 'huge.yaml');
    await writeFile(file, `# ${'x'.repeat(MAX_MANIFEST_BYTES)}\n`);
    await expect(loadManifests([file])).rejects.toThrow(
      new ManifestReadError(file, `larger than ${MAX_MANIFEST_BYTES} bytes`),
    );
  });

  it('fails clearly for a path that does not exist', async () => {
    await expect(loadManifests([path.join(dir, 'nope')])).rejects.toBeInstanceOf(ManifestReadError);
  });

  it('reads stdin for -', async () => {
    const result = await loadManifests(['-'], {
      stdin: () =>
        Promise.resolve('apiVersion: swarmkeeper/v1\nkind: Volume\nmetadata: {name: v1}\nspec: {}\n'),
    });
    expect(result.resources.map((r) => r.location)).toEqual(['<stdin>:1']);
  });
});

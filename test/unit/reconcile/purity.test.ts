import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const DIR = new URL('../../../src/reconcile/', import.meta.url);
const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));

/** Every `import … from '…'` and `export … from '…'`, with whether it is type-only. */
function imports(source: string): { specifier: string; typeOnly: boolean }[] {
  const found: { specifier: string; typeOnly: boolean }[] = [];
  for (const match of source.matchAll(/^(import|export)(\s+type)?[\s\S]*?from\s+'([^']+)'/gm)) {
    found.push({ specifier: match[3] ?? '', typeOnly: match[2] !== undefined });
  }
  for (const match of source.matchAll(/import\(\s*'([^']+)'\s*\)/g))
    found.push({ specifier: match[1] ?? '', typeOnly: false });
  return found;
}

describe('src/reconcile is pure', () => {
  it.each(files)('%s imports no node: module, no dockerode runtime, no ioredis', (file) => {
    const source = readFileSync(new URL(file, DIR), 'utf8');
    for (const { specifier, typeOnly } of imports(source)) {
      expect(specifier.startsWith('node:'), `${file} imports ${specifier}`).toBe(false);
      expect(specifier, `${file} imports ${specifier}`).not.toBe('ioredis');
      if (specifier === 'dockerode') expect(typeOnly, `${file} imports dockerode at runtime`).toBe(true);
      // Only sibling modules and the pure schema/metadata/units/errors modules.
      if (specifier.startsWith('.'))
        expect(specifier).toMatch(/^\.\/|^\.\.\/(resources|desired\/store|errors)/);
    }
    const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    expect(code).not.toMatch(/\bBuffer\b|\bprocess\.|\brequire\(/);
  });
});

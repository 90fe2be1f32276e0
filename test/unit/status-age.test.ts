import { describe, expect, it } from 'vitest';
import { age } from '../../src/cli/commands/status.js';

describe('age', () => {
  const now = new Date('2026-11-26T12:00:00Z');
  it.each([
    [undefined, '-'],
    ['garbage', '-'],
    ['2026-11-26T11:59:15Z', '45s'],
    ['2026-11-26T11:48:00Z', '12m'],
    ['2026-11-26T09:00:00Z', '3h'],
    ['2026-11-24T12:00:00Z', '2d'],
  ])('%s → %s', (iso, expected) => {
    expect(age(iso, now)).toBe(expected);
  });
});

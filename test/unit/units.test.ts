import { describe, expect, it } from 'vitest';
import { parseBytes, parseDurationNanos, parseNanoCpus } from '../../src/resources/units.js';

describe('parseBytes', () => {
  it.each([
    ['512M', 512 * 1024 ** 2],
    ['1Gi', 1024 ** 3],
    ['1g', 1024 ** 3],
    ['1G', 1024 ** 3],
    ['2Ti', 2 * 1024 ** 4],
    ['100k', 102_400],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['1073741824', 1_073_741_824],
    ['0', 0],
    ['64MB', 64 * 1024 ** 2],
    [0, 0],
    [4096, 4096],
  ] as const)('%s is %d bytes', (input, bytes) => {
    expect(parseBytes(input)).toBe(bytes);
  });

  it.each(['-1', '1Zi', 'abc', '', '1 G G', '1e9', 'Gi', -5, 1.5, Number.NaN, '99999999999999P'])(
    'rejects %s',
    (input) => {
      expect(parseBytes(input)).toBeUndefined();
    },
  );
});

describe('parseNanoCpus', () => {
  it.each([
    ['0.5', 500_000_000],
    [2, 2_000_000_000],
    ['1', 1_000_000_000],
    ['0.25', 250_000_000],
  ] as const)('%s CPUs', (input, nanos) => {
    expect(parseNanoCpus(input)).toBe(nanos);
  });

  it.each(['0', '-1', 'half', '', '1e3', 0, 5000])('rejects %s', (input) => {
    expect(parseNanoCpus(input)).toBeUndefined();
  });
});

describe('parseDurationNanos', () => {
  it.each([
    ['10s', 10e9],
    ['500ms', 500e6],
    ['1m30s', 90e9],
    ['1h', 3600e9],
    ['0', 0],
    ['1.5s', 1.5e9],
  ] as const)('%s', (input, nanos) => {
    expect(parseDurationNanos(input)).toBe(nanos);
  });

  it.each(['10', 'ten seconds', '5d', '', 's', '1s2'])('rejects %s', (input) => {
    expect(parseDurationNanos(input)).toBeUndefined();
  });
});

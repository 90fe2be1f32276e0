import { describe, expect, it } from 'vitest';
import { inSweepWindow, resyncsPerFullSweep, sweepWindow } from '../../src/homes/sweep-window.js';

describe('sweepWindow', () => {
  it.each([
    // cursor, total, limit, start, count, next
    { cursor: 0, total: 0, limit: 2000, start: 0, count: 0, next: 0 },
    { cursor: 0, total: 3, limit: 2000, start: 0, count: 3, next: 0 },
    { cursor: 0, total: 10_000, limit: 0, start: 0, count: 10_000, next: 0 },
    { cursor: 0, total: 10_000, limit: 2000, start: 0, count: 2000, next: 2000 },
    { cursor: 8000, total: 10_000, limit: 2000, start: 8000, count: 2000, next: 0 },
    { cursor: 9000, total: 10_000, limit: 2000, start: 9000, count: 2000, next: 1000 },
    // The list shrank under the cursor: start again at the front.
    { cursor: 9000, total: 5000, limit: 2000, start: 0, count: 2000, next: 2000 },
    { cursor: 5000, total: 5000, limit: 2000, start: 0, count: 2000, next: 2000 },
    { cursor: 4, total: 5, limit: 5, start: 4, count: 5, next: 4 },
  ])('cursor $cursor of $total by $limit starts at $start for $count', (row) => {
    expect(sweepWindow(row.cursor, row.total, row.limit)).toEqual({
      start: row.start,
      count: row.count,
      next: row.next,
    });
  });

  it('looks at every user exactly once in ceil(total / limit) windows, wrapping round the end', () => {
    for (const [total, limit] of [
      [10_000, 2000],
      [10_001, 2000],
      [7, 3],
      [1, 1],
    ] as const) {
      const seen = new Array<number>(total).fill(0);
      let cursor = 0;
      const rounds = resyncsPerFullSweep(total, limit);
      for (let round = 0; round < rounds; round++) {
        const window = sweepWindow(cursor, total, limit);
        for (let i = 0; i < total; i++) if (inSweepWindow(window, i, total)) seen[i]! += 1;
        cursor = window.next;
      }
      // Wrapping may show the first few users twice in the last window; none is left out.
      expect(seen.every((n) => n >= 1)).toBe(true);
      expect(seen.reduce((a, b) => a + b, 0)).toBe(rounds * Math.min(limit, total));
    }
  });

  it.each([
    { i: 9999, start: 9000, count: 2000, total: 10_000, inside: true },
    { i: 0, start: 9000, count: 2000, total: 10_000, inside: true },
    { i: 999, start: 9000, count: 2000, total: 10_000, inside: true },
    { i: 1000, start: 9000, count: 2000, total: 10_000, inside: false },
    { i: 8999, start: 9000, count: 2000, total: 10_000, inside: false },
    { i: 2, start: 0, count: 3, total: 3, inside: true },
  ])('index $i inside [$start, +$count) of $total: $inside', ({ i, start, count, total, inside }) => {
    expect(inSweepWindow({ start, count, next: 0 }, i, total)).toBe(inside);
  });

  it.each([
    { total: 0, limit: 2000, resyncs: 1 },
    { total: 2000, limit: 2000, resyncs: 1 },
    { total: 2001, limit: 2000, resyncs: 2 },
    { total: 10_000, limit: 2000, resyncs: 5 },
    { total: 10_000, limit: 0, resyncs: 1 },
  ])('$total users by $limit: every folder within $resyncs resyncs', ({ total, limit, resyncs }) => {
    expect(resyncsPerFullSweep(total, limit)).toBe(resyncs);
  });
});

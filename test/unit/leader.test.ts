import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LEASE_MS,
  DEFAULT_RENEW_DEADLINE_MS,
  DEFAULT_RETRY_MS,
  LeaderElector,
  clockSkewBudget,
  instanceIdentity,
  timingIssues,
} from '../../src/controller/leader.js';
import type { Lease } from '../../src/desired/lease.js';
import { ConfigError } from '../../src/errors.js';

/** Construction never touches the lease; anything that does is a bug these tests should see. */
const untouchable: Lease = {
  tryAcquire: () => Promise.reject(new Error('lease used')),
  renew: () => Promise.reject(new Error('lease used')),
  release: () => Promise.reject(new Error('lease used')),
  holder: () => Promise.reject(new Error('lease used')),
};

describe('leader election timing', () => {
  it("defaults to client-go's 15 s lease, 10 s renew deadline, 2 s retry", () => {
    expect([DEFAULT_LEASE_MS, DEFAULT_RENEW_DEADLINE_MS, DEFAULT_RETRY_MS]).toEqual([15_000, 10_000, 2_000]);
    expect(
      timingIssues({
        leaseMs: DEFAULT_LEASE_MS,
        renewDeadlineMs: DEFAULT_RENEW_DEADLINE_MS,
        retryMs: DEFAULT_RETRY_MS,
      }),
    ).toEqual([]);
  });

  it('tolerates a leader clock up to a third slow with the defaults', () => {
    expect(clockSkewBudget(15_000, 10_000)).toBeCloseTo(1 / 3);
    expect(clockSkewBudget(1_500, 1_000)).toBeCloseTo(1 / 3);
    expect(clockSkewBudget(10_000, 10_000)).toBe(0);
  });

  it('refuses timings that cannot keep the guarantee', () => {
    expect(timingIssues({ leaseMs: 10_000, renewDeadlineMs: 10_000, retryMs: 2_000 })).toEqual([
      expect.stringContaining('renewDeadlineMs must be below leaseMs'),
    ]);
    expect(timingIssues({ leaseMs: 15_000, renewDeadlineMs: 2_000, retryMs: 2_000 })).toEqual([
      expect.stringContaining('retryMs must be below renewDeadlineMs'),
    ]);
    expect(timingIssues({ leaseMs: 0, renewDeadlineMs: 1.5, retryMs: Number.NaN })).toEqual([
      'leaseMs must be a positive integer',
      'renewDeadlineMs must be a positive integer',
      'retryMs must be a positive integer',
    ]);
  });

  it('the elector rejects such timings and an empty identity when built', () => {
    expect(() => new LeaderElector({ lease: untouchable, identity: 'a', leaseMs: 9_000 })).toThrow(
      ConfigError,
    );
    expect(() => new LeaderElector({ lease: untouchable, identity: 'a', retryMs: 10_000 })).toThrow(
      /retryMs must be below renewDeadlineMs/,
    );
    expect(() => new LeaderElector({ lease: untouchable, identity: '' })).toThrow(ConfigError);
    const elector = new LeaderElector({ lease: untouchable, identity: 'a' });
    expect(elector.isLeader).toBe(false);
    expect(elector.role).toBe('stopped');
  });

  it('stopping an elector that never started touches nothing, and it cannot start afterwards', async () => {
    const elector = new LeaderElector({ lease: untouchable, identity: 'a' });
    const seen: boolean[] = [];
    let completed = false;
    elector.leadership$.subscribe({ next: (v) => seen.push(v), complete: () => (completed = true) });
    await elector.stop();
    expect(seen).toEqual([false]);
    expect(completed).toBe(true);
    expect(() => elector.start()).toThrow(/after stop/);
  });
});

describe('instanceIdentity', () => {
  it('names host and pid, and differs per call so a restart is never its predecessor', () => {
    const id = instanceIdentity();
    expect(id).toMatch(new RegExp(`^.+:${process.pid}:[0-9a-f]{8}$`));
    expect(instanceIdentity()).not.toBe(id);
  });
});

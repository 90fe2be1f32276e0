import { describe, expect, it } from 'vitest';
import { containerHealth, serviceHealth } from '../../src/controller/health.js';
import type { ObservedContainerDetail, ObservedService, ObservedTask } from '../../src/observed/reader.js';

const task = (state: string, desiredState = 'running', extra: Partial<ObservedTask> = {}): ObservedTask => ({
  id: Math.random().toString(36),
  serviceId: 's',
  slot: 1,
  nodeId: 'n',
  desiredState,
  state,
  message: undefined,
  error: undefined,
  containerId: undefined,
  exitCode: undefined,
  timestamp: '2026-11-26T07:00:00Z',
  ...extra,
});

const service = (replicas: number | 'global', tasks: ObservedTask[]): ObservedService =>
  ({
    id: 's',
    name: 'web',
    version: 1,
    spec: { Mode: replicas === 'global' ? { Global: {} } : { Replicated: { Replicas: replicas } } },
    labels: {},
    tasks,
    inspect: {},
  }) as unknown as ObservedService;

describe('serviceHealth', () => {
  it.each([
    ['missing', undefined, 0, 'Missing'],
    ['all replicas running', service(2, [task('running'), task('running')]), 0, 'Healthy'],
    ['scaled to zero', service(0, []), 0, 'Healthy'],
    ['one still starting', service(2, [task('running'), task('starting')]), 0, 'Progressing'],
    [
      'failing with nothing starting',
      service(1, [task('failed', 'shutdown', { error: 'starting container failed: mount' })]),
      0,
      'Degraded',
    ],
    [
      'more tasks than wanted while scaling down',
      service(1, [task('running'), task('running')]),
      0,
      'Progressing',
    ],
    ['global on two nodes', service('global', [task('running'), task('running')]), 2, 'Healthy'],
    ['global missing a node', service('global', [task('running')]), 2, 'Progressing'],
  ])('%s', (_label, observed, nodes, expected) => {
    expect(serviceHealth(observed, nodes).health).toBe(expected);
  });

  it('names the last task error', () => {
    const report = serviceHealth(service(1, [task('rejected', 'shutdown', { error: 'no such image' })]), 0);
    expect(report.reason).toContain('no such image');
  });
});

describe('containerHealth', () => {
  const container = (running: boolean, status: string, health?: string): ObservedContainerDetail =>
    ({
      State: { Running: running, Status: status, ...(health && { Health: { Status: health } }) },
    }) as unknown as ObservedContainerDetail;

  it.each([
    ['missing', undefined, 'running', 'Missing'],
    ['running without healthcheck', container(true, 'running'), 'running', 'Healthy'],
    ['running and healthy', container(true, 'running', 'healthy'), 'running', 'Healthy'],
    ['healthcheck starting', container(true, 'running', 'starting'), 'running', 'Progressing'],
    ['unhealthy', container(true, 'running', 'unhealthy'), 'running', 'Degraded'],
    ['exited but wanted running', container(false, 'exited'), 'running', 'Degraded'],
    ['stopped on purpose', container(false, 'exited'), 'stopped', 'Healthy'],
  ] as const)('%s', (_label, observed, desired, expected) => {
    expect(containerHealth(observed, desired).health).toBe(expected);
  });
});

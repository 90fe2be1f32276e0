/**
 * Health, kept apart from sync as Argo CD does: sync says whether live matches desired, health
 * whether it works. Computed from Swarm tasks or the container's state; pure.
 */
import type { HealthState } from '../desired/store.js';
import type { ObservedContainerDetail, ObservedService, ObservedTask } from '../observed/reader.js';

const STARTING_STATES = new Set([
  'new',
  'allocated',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
]);
const FAILED_STATES = new Set(['failed', 'rejected', 'orphaned']);

export interface HealthReport {
  readonly health: HealthState;
  /** Why, for status: e.g. "1/2 tasks running; last error: starting container failed: ...". */
  readonly reason?: string;
}

/** Health of a service: running tasks against the desired count (replicas, or one per node for global). */
export function serviceHealth(service: ObservedService | undefined, globalNodeCount: number): HealthReport {
  if (!service) return { health: 'Missing', reason: 'the service does not exist' };
  const mode = service.spec.Mode;
  const wanted = mode?.Global !== undefined ? globalNodeCount : (mode?.Replicated?.Replicas ?? 1);
  const current = service.tasks.filter((t) => t.desiredState === 'running');
  const running = current.filter((t) => t.state === 'running').length;
  const starting = current.filter((t) => STARTING_STATES.has(t.state)).length;
  const summary = `${running}/${wanted} tasks running`;
  if (running >= wanted && current.length <= wanted) return { health: 'Healthy', reason: summary };
  const failure = latestFailure(service.tasks);
  if (failure && starting === 0 && running < wanted) {
    return { health: 'Degraded', reason: `${summary}; last error: ${failure}` };
  }
  return { health: 'Progressing', reason: failure ? `${summary}; last error: ${failure}` : summary };
}

function latestFailure(tasks: readonly ObservedTask[]): string | undefined {
  const failed = tasks
    .filter((t) => FAILED_STATES.has(t.state) && (t.error ?? t.message))
    .sort((a, b) => (b.timestamp ?? '').localeCompare(a.timestamp ?? ''));
  const first = failed[0];
  return first ? (first.error ?? first.message) : undefined;
}

/** Health of a plain container: running (and healthy, when it has a healthcheck), or stopped on purpose. */
export function containerHealth(
  container: ObservedContainerDetail | undefined,
  desiredState: 'running' | 'stopped',
): HealthReport {
  if (!container) return { health: 'Missing', reason: 'the container does not exist' };
  const state = container.State;
  if (desiredState === 'stopped') {
    return state.Running
      ? { health: 'Progressing', reason: 'stopping' }
      : { health: 'Healthy', reason: 'stopped' };
  }
  if (!state.Running) return { health: 'Degraded', reason: `container is ${state.Status}` };
  const check = state.Health?.Status;
  if (check === 'unhealthy') return { health: 'Degraded', reason: 'healthcheck failing' };
  if (check === 'starting') return { health: 'Progressing', reason: 'healthcheck starting' };
  return { health: 'Healthy', reason: 'running' };
}

/** Networks, volumes, configs and secrets are healthy when they exist. */
export function presenceHealth(exists: boolean): HealthReport {
  return exists ? { health: 'Healthy' } : { health: 'Missing' };
}

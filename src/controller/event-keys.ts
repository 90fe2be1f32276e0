/**
 * Which resource keys a Docker event asks the controller to look at. Events only say "look at
 * this key now"; the reconcile re-reads both sides, so a key too many costs one cheap pass.
 */
import type { DockerObjectEvent } from '../observed/events.js';
import type { ResourceRef } from '../resources/resource.js';

/** Realised configs and secrets are `<resource>-<hash8>`. */
const REALISED_SUFFIX = /-[0-9a-f]{8}$/;

/** Container actions that change what the reconciler or health sees; exec_* and the like do not. */
const CONTAINER_ACTIONS = new Set([
  'create',
  'start',
  'restart',
  'die',
  'stop',
  'kill',
  'destroy',
  'rename',
  'update',
  'pause',
  'unpause',
  'oom',
  'connect',
  'disconnect',
]);

const SWARM_SERVICE_LABEL = 'com.docker.swarm.service.name';

export type EventKeys = { readonly keys: readonly ResourceRef[] } | { readonly allOf: 'Service' };

/** The keys an event concerns. Node events concern every Service (placement may change). */
export function keysForEvent(event: DockerObjectEvent): EventKeys {
  const name = event.name;
  switch (event.type) {
    case 'node':
      return { allOf: 'Service' };
    case 'service':
      return { keys: name ? [`Service/${name}`] : [] };
    case 'network':
      return { keys: name ? [`Network/${name}`] : [] };
    case 'volume':
      return {
        keys: name && (event.action === 'create' || event.action === 'destroy') ? [`Volume/${name}`] : [],
      };
    case 'config':
      return { keys: name ? [`Config/${name.replace(REALISED_SUFFIX, '')}`] : [] };
    case 'secret':
      return { keys: name ? [`Secret/${name.replace(REALISED_SUFFIX, '')}`] : [] };
    case 'container': {
      const action = event.action.split(':')[0]?.trim() ?? event.action;
      const serviceName = event.labels?.[SWARM_SERVICE_LABEL];
      // A task's container belongs to its service: its life and death are the service's health.
      if (serviceName) return { keys: [`Service/${serviceName}`] };
      if (!name || !(CONTAINER_ACTIONS.has(action) || action === 'health_status')) return { keys: [] };
      return { keys: [`Container/${name}`] };
    }
  }
}

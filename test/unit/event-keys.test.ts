import { describe, expect, it } from 'vitest';
import { keysForEvent } from '../../src/controller/event-keys.js';
import type { DockerObjectEvent } from '../../src/observed/events.js';

const event = (
  partial: Partial<DockerObjectEvent> & Pick<DockerObjectEvent, 'type' | 'action'>,
): DockerObjectEvent => ({
  id: 'abc',
  attributes: {},
  time: 0,
  ...partial,
});

describe('keysForEvent', () => {
  it.each([
    [
      'a service removal',
      event({ type: 'service', action: 'remove', name: 'nginx' }),
      { keys: ['Service/nginx'] },
    ],
    [
      'a network creation',
      event({ type: 'network', action: 'create', name: 'jupyterhub' }),
      { keys: ['Network/jupyterhub'] },
    ],
    [
      'a volume removal',
      event({ type: 'volume', action: 'destroy', name: 'nfsvolume' }),
      { keys: ['Volume/nfsvolume'] },
    ],
    ['a volume mount (noise)', event({ type: 'volume', action: 'mount', name: 'nfsvolume' }), { keys: [] }],
    [
      'a realised config',
      event({ type: 'config', action: 'remove', name: 'nginx-conf-1a2b3c4d' }),
      { keys: ['Config/nginx-conf'] },
    ],
    [
      'a realised secret',
      event({ type: 'secret', action: 'create', name: 'oauth-0a0b0c0d' }),
      { keys: ['Secret/oauth'] },
    ],
    [
      'a stopped container',
      event({ type: 'container', action: 'die', name: 'letsencrypt-nginx' }),
      { keys: ['Container/letsencrypt-nginx'] },
    ],
    [
      'a health change',
      event({ type: 'container', action: 'health_status: unhealthy', name: 'c1' }),
      { keys: ['Container/c1'] },
    ],
    ['an exec (noise)', event({ type: 'container', action: 'exec_start: sh', name: 'c1' }), { keys: [] }],
    [
      "a service task's container",
      event({
        type: 'container',
        action: 'die',
        name: 'nginx.1.xyz',
        labels: { 'com.docker.swarm.service.name': 'nginx' },
      }),
      { keys: ['Service/nginx'] },
    ],
    ['a node going down', event({ type: 'node', action: 'update' }), { allOf: 'Service' }],
    ['a service event without a name', event({ type: 'service', action: 'update' }), { keys: [] }],
  ])('%s', (_label, input, expected) => {
    expect(keysForEvent(input)).toEqual(expected);
  });
});

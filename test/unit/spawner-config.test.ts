import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { spawnerConfigSnippet } from '../../src/cli/commands/homes.js';
import { validateResource, type ResourceOf } from '../../src/resources/resource.js';

function homes(spec: unknown): ResourceOf<'HomeFolders'> {
  const result = validateResource({
    apiVersion: 'swarmkeeper/v1',
    kind: 'HomeFolders',
    metadata: { name: 'nfs' },
    spec,
  });
  if (!result.ok || result.resource.kind !== 'HomeFolders') throw new Error(JSON.stringify(result));
  return result.resource;
}

/** Runs the snippet in Python with a stand-in `c`, and prints what the spawner would receive. */
function evaluate(snippet: string): unknown {
  const program = [
    'import json, types',
    'c = types.SimpleNamespace(SwarmSpawner=types.SimpleNamespace())',
    snippet,
    'spec = getattr(c.SwarmSpawner, "container_spec", None) or c.SwarmSpawner.extra_container_spec',
    'print(json.dumps(spec))',
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-c', program], { encoding: 'utf8' }));
}

describe('spawner-config', () => {
  it('prints mounts that Python reads back exactly as the HomeFolders template says', () => {
    const snippet = spawnerConfigSnippet(
      homes({
        root: '/var/nfs',
        naming: 'md5',
        volume: {
          name: 'jupyterhub-user-{username}',
          driverOpts: { type: 'nfs4', o: 'addr=192.0.2.10,rw', device: ':/var/nfs/{username}/' },
        },
      }),
      '/home/jovyan/work',
    );
    expect(evaluate(snippet)).toEqual({
      mounts: [
        {
          type: 'volume',
          source: 'jupyterhub-user-{username}',
          target: '/home/jovyan/work',
          no_copy: true,
          driver_config: {
            name: 'local',
            options: { type: 'nfs4', o: 'addr=192.0.2.10,rw', device: ':/var/nfs/{username}/' },
          },
        },
      ],
    });
    expect(snippet).toContain('c.SwarmSpawner.container_spec');
  });

  it('uses extra_container_spec for dockerspawner naming, and quotes odd characters safely', () => {
    const snippet = spawnerConfigSnippet(
      homes({
        root: '/v',
        naming: 'escaped',
        volume: { name: 'u-{username}', driverOpts: { o: "it's\\odd" } },
      }),
      '/work',
    );
    expect(snippet).toContain('c.SwarmSpawner.extra_container_spec');
    expect(evaluate(snippet)).toMatchObject({ mounts: [{ driver_config: { options: { o: "it's\\odd" } } }] });
  });

  it('refuses a HomeFolders without a volume template, naming the field', () => {
    expect(() => spawnerConfigSnippet(homes({ root: '/v' }), '/work')).toThrow(/spec\.volume/);
  });
});

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

/** Runs the snippet in Python with a stand-in `c` and spawner, and prints what the spawner would receive. */
function evaluate(snippet: string, escapedName = 'alice'): unknown {
  const program = [
    'import json, types',
    'c = types.SimpleNamespace(SwarmSpawner=types.SimpleNamespace())',
    snippet,
    'if hasattr(c.SwarmSpawner, "container_spec"):',
    '    print(json.dumps(c.SwarmSpawner.container_spec))',
    'else:',
    `    spawner = types.SimpleNamespace(escaped_name=${JSON.stringify(escapedName)})`,
    '    swarmkeeper_home_volume(spawner)',
    '    print(json.dumps({"volumes": c.SwarmSpawner.volumes, "driver": c.SwarmSpawner.volume_driver, "options": spawner.volume_driver_options}))',
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

  it('sets the driver options per user for dockerspawner naming, and quotes odd characters safely', () => {
    const snippet = spawnerConfigSnippet(
      homes({
        root: '/v',
        naming: 'escaped',
        volume: { name: 'u-{username}', driverOpts: { o: "it's\\odd", device: ':/v/{username}/' } },
      }),
      '/work',
    );
    expect(evaluate(snippet, 'a-2eb-40x')).toEqual({
      volumes: { 'u-{username}': '/work' },
      driver: 'local',
      options: { o: "it's\\odd", device: ':/v/a-2eb-40x/' },
    });
  });

  it('refuses a HomeFolders without a volume template, naming the field', () => {
    expect(() => spawnerConfigSnippet(homes({ root: '/v' }), '/work')).toThrow(/spec\.volume/);
  });
});

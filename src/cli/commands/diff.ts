import { buildContext, isDockerResource, planResource } from '../../controller/planning.js';
import { createDocker } from '../../observed/docker-client.js';
import { DockerObservedReader } from '../../observed/reader.js';
import type { Action } from '../../reconcile/index.js';
import { loadManifests } from '../../resources/manifest.js';
import { refOf } from '../../resources/resource.js';
import { EXIT, type CliIo } from '../io.js';
import { printIssues } from './validate.js';

export interface DiffCommandOptions {
  readonly filename: readonly string[];
  readonly recursive?: boolean;
  /** The key prefix whose objects count as this deployment's (for pruning older config versions). */
  readonly owner: string;
}

/**
 * Field-level differences between manifests and the live Swarm, as the controller would plan
 * them. Exits 1 when anything differs, as `kubectl diff` does.
 */
export async function runDiff(io: CliIo, options: DiffCommandOptions): Promise<number> {
  const set = await loadManifests(options.filename, {
    recursive: options.recursive ?? false,
    stdin: () => io.readStdin(),
  });
  if (set.issues.length > 0) {
    printIssues(io, set.issues);
    return EXIT.failed;
  }
  const reader = new DockerObservedReader(createDocker());
  const snapshot = await reader.snapshot();
  const resources = set.resources.map((r) => r.resource);
  const context = buildContext(snapshot, resources);
  let differs = false;
  for (const resource of resources) {
    if (!isDockerResource(resource)) continue;
    const { actions } = await planResource(resource, { snapshot, reader, owner: options.owner }, context);
    const lines = describeActions(actions, resource.kind === 'Secret');
    if (lines.length === 0) continue;
    differs = true;
    io.out(`${refOf(resource)}:`);
    for (const line of lines) io.out(`  ${line}`);
  }
  if (!differs) io.err('no differences');
  return differs ? EXIT.failed : EXIT.ok;
}

function describeActions(actions: readonly Action[], secret: boolean): string[] {
  const lines: string[] = [];
  for (const action of actions) {
    switch (action.type) {
      case 'none':
        break;
      case 'create':
        lines.push('missing: would be created');
        break;
      case 'conflict':
        lines.push(`conflict: ${action.reason}`);
        break;
      case 'wait':
        lines.push(`waiting for ${action.missing.join(', ')}`);
        break;
      case 'start':
      case 'stop':
        lines.push(`would ${action.type}`);
        break;
      case 'prune':
        lines.push(`older version ${action.name} would be removed`);
        break;
      case 'update':
      case 'recreate':
        if (action.type === 'recreate') lines.push(`would be recreated: ${action.reason}`);
        for (const drift of action.drift) {
          const desired = secret ? '[redacted]' : JSON.stringify(drift.desired);
          const actual = secret ? '[redacted]' : JSON.stringify(drift.actual);
          lines.push(`${drift.path}: ${actual} → ${desired}`);
        }
        break;
    }
  }
  return lines;
}

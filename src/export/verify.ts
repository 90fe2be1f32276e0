/**
 * What adopting the exported manifests would do, planned exactly as the controller and
 * `swarmkeeper diff` plan (src/controller/planning.ts) against the snapshot they came from. The
 * goal is a plan of label-only updates: those restart nothing.
 */
import { buildContext, isDockerResource, planResource } from '../controller/planning.js';
import type { ObservedReader, ObservedSnapshot } from '../observed/reader.js';
import type { Action } from '../reconcile/index.js';
import { refOf, type Resource } from '../resources/resource.js';

export type AdoptionOutcome =
  /** Nothing to do; for networks and volumes, labels Docker cannot add are left missing. */
  | 'unchanged'
  /** An update of labels only (services, configs): no task restarts. */
  | 'labels'
  /** Recreated only to carry the labels (plain containers: Docker cannot relabel one). Restarts it. */
  | 'recreate'
  /** Anything else: a create, field drift, a wait for a dependency. */
  | 'changes';

export interface AdoptionCheck {
  readonly ref: string;
  readonly outcome: AdoptionOutcome;
  readonly detail: readonly string[];
}

export async function checkAdoption(
  resources: readonly Resource[],
  snapshot: ObservedSnapshot,
  reader: ObservedReader,
  owner: string,
): Promise<AdoptionCheck[]> {
  const context = buildContext(snapshot, resources);
  const checks: AdoptionCheck[] = [];
  for (const resource of resources) {
    if (!isDockerResource(resource)) continue;
    const { actions } = await planResource(resource, { snapshot, reader, owner }, context);
    checks.push({ ref: refOf(resource), ...classify(actions) });
  }
  return checks;
}

function classify(actions: readonly Action[]): { outcome: AdoptionOutcome; detail: string[] } {
  const work = actions.filter((a) => a.type !== 'none');
  if (work.length === 0) return { outcome: 'unchanged', detail: [] };
  const fieldDrift = (a: Action): string[] =>
    'drift' in a ? a.drift.filter((d) => !d.path.startsWith('metadata.labels')).map((d) => d.path) : [];
  const [only] = work;
  if (work.length === 1 && only?.type === 'update' && only.labelsOnly)
    return { outcome: 'labels', detail: [] };
  if (work.length === 1 && only?.type === 'recreate' && fieldDrift(only).length === 0)
    return { outcome: 'recreate', detail: [only.reason] };
  const detail = work.flatMap((a): string[] => {
    switch (a.type) {
      case 'create':
        return [
          a.kind === 'Config' || a.kind === 'Secret'
            ? `would be created as ${a.body.Name}`
            : 'would be created',
        ];
      case 'wait':
        return [`would wait for ${a.missing.join(', ')}`];
      case 'conflict':
        return [`conflict: ${a.reason}`];
      case 'update':
      case 'recreate':
        return [`would be ${a.type}d: ${fieldDrift(a).join(', ') || 'labels'}`];
      default:
        return [`would ${a.type}`];
    }
  });
  return { outcome: 'changes', detail };
}

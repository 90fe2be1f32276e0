/**
 * The per-user Docker volume, checked against the HomeFolders template. One check, run by the
 * controller on the engine it talks to and by the volume check job on every other node
 * (`swarmkeeper homes check-volumes`), so both apply the same rules:
 *
 * - missing: created from the template, so the user's first task finds it right;
 * - options differ (Docker never updates them, docker/cli #1279): removed and created again, but
 *   only while no container uses it and only when its options mount something elsewhere
 *   (`mountsElsewhere`), so removing it deletes no data;
 * - in use: left alone and reported, naming the containers; the user's session must restart.
 */
import type { ActionReport, Actuator } from '../actuate/index.js';
import { ERROR_CODES, SwarmkeeperError, describeError } from '../errors.js';
import type { ObservedVolume } from '../observed/reader.js';
import { mountsElsewhere, planVolume } from '../reconcile/index.js';
import type { HomeFoldersSpec } from '../resources/kinds/homefolders.js';
import { USERNAME_PLACEHOLDER } from '../resources/kinds/homefolders.js';
import { ANNOTATIONS, API_VERSION } from '../resources/metadata.js';
import { validateResource, type ResourceOf } from '../resources/resource.js';
import { expandTemplate, segmentProblem } from './naming.js';

export type VolumeTemplate = NonNullable<HomeFoldersSpec['volume']>;

export type UserVolumeResult =
  | { readonly ok: true; readonly resource: ResourceOf<'Volume'> }
  | { readonly ok: false; readonly message: string };

/** The Volume resource the template gives for one folder. */
export function userVolumeFor(template: VolumeTemplate, folder: string): UserVolumeResult {
  const name = expandTemplate(template.name, folder);
  const driverOpts = Object.fromEntries(
    Object.entries(template.driverOpts ?? {}).map(([k, v]) => [k, expandTemplate(v, folder)]),
  );
  const result = validateResource({
    apiVersion: API_VERSION,
    kind: 'Volume',
    // Swarm creates these volumes itself when a user's task lands on a node: take them over.
    metadata: { name, annotations: { [ANNOTATIONS.adopt]: 'true' } },
    spec: { ...(template.driver !== undefined && { driver: template.driver }), driverOpts },
  });
  if (!result.ok) {
    return {
      ok: false,
      message: `volume template gives an invalid volume for ${folder}: ${result.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    };
  }
  if (result.resource.kind !== 'Volume') return { ok: false, message: 'not a volume' };
  return { ok: true, resource: result.resource };
}

/** The `{username}` part of a volume name made from the template, or undefined when it was not made from it. */
export function folderOfVolume(templateName: string, volumeName: string): string | undefined {
  const match = templatePattern(templateName).exec(volumeName);
  const folder = match?.[1];
  return folder !== undefined && segmentProblem(folder) === undefined ? folder : undefined;
}

export function templatePattern(template: string): RegExp {
  const [before = '', after = ''] = template.split(USERNAME_PLACEHOLDER);
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escape(before)}([^/]+)${escape(after)}$`);
}

export type UserVolumeOutcome =
  | { readonly state: 'synced' }
  | { readonly state: 'created' | 'replaced'; readonly report: ActionReport }
  /** The options differ but containers use the volume: it is replaced once they are gone. */
  | { readonly state: 'inUse'; readonly detail: string }
  /** The options differ but the volume may hold data of its own: never removed. */
  | { readonly state: 'ownData' }
  /** The volume exists and swarmkeeper may not touch it. */
  | { readonly state: 'conflict'; readonly detail: string };

/**
 * Brings one per-user volume in line with its resource through `executor` (the guarded executor
 * in the controller, a plain actuator in the job). Throws what the executor throws, except the
 * engine's "in use", which is an outcome.
 */
export async function ensureUserVolume(
  executor: Pick<Actuator, 'execute'>,
  resource: ResourceOf<'Volume'>,
  observed: ObservedVolume | undefined,
): Promise<UserVolumeOutcome> {
  const [action] = planVolume(resource, observed);
  if (action === undefined || action.type === 'none') return { state: 'synced' };
  if (action.type === 'conflict') return { state: 'conflict', detail: action.reason };
  if (action.type === 'recreate') {
    if (!mountsElsewhere(observed?.Options)) return { state: 'ownData' };
    if (observed !== undefined && observed.usedBy.length > 0) {
      return { state: 'inUse', detail: `used by ${observed.usedBy.map((u) => u.containerName).join(', ')}` };
    }
  }
  try {
    const report = await executor.execute(action, { kind: 'Volume', name: resource.metadata.name });
    return { state: action.type === 'create' ? 'created' : 'replaced', report };
  } catch (error) {
    if (error instanceof SwarmkeeperError && error.code === ERROR_CODES.DOCKER_IN_USE) {
      return { state: 'inUse', detail: describeError(error) };
    }
    throw error;
  }
}

/**
 * `swarmkeeper homes check-volumes`, the task of the per-node volume check job: every volume on
 * this node's engine whose name the HomeFolders template makes goes through the same check the
 * controller runs on its own engine (`ensureUserVolume`). Only node-local Engine calls are made,
 * so a worker answers them. Volumes of users who never ran here are not created: Swarm creates
 * them from the spawner's mounts, which `spawner-config` generates from the same template.
 */
import { DockerActuator } from '../actuate/index.js';
import { describeError } from '../errors.js';
import { pingDocker, type Docker } from '../observed/docker-client.js';
import { DockerObservedReader } from '../observed/reader.js';
import {
  VOLUME_CHECK_RESULT_KIND,
  type VolumeCheckInput,
  type VolumeCheckResult,
} from '../reconcile/volume-check.js';
import { LABELS } from '../resources/metadata.js';
import { ensureUserVolume, folderOfVolume, userVolumeFor } from './user-volume.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export async function runVolumeCheck(docker: Docker, input: VolumeCheckInput): Promise<VolumeCheckResult> {
  const engine = await pingDocker(docker);
  const reader = new DockerObservedReader(docker);
  // No journal: this actuator only creates and recreates volumes.
  const actuator = new DockerActuator({ docker, reader, owner: input.owner });
  const result: Mutable<VolumeCheckResult> = {
    kind: VOLUME_CHECK_RESULT_KIND,
    homeFolders: input.homeFolders,
    templateHash: input.templateHash,
    nodeId: engine.swarm.nodeId,
    hostname: engine.hostname,
    checked: 0,
    replaced: [],
    inUse: [],
    kept: [],
    errors: [],
  };
  for (const [name, observed] of await reader.volumes()) {
    const folder = folderOfVolume(input.volume.name, name);
    if (folder === undefined) continue;
    result.checked += 1;
    const volume = userVolumeFor(input.volume, folder);
    if (!volume.ok) {
      result.errors.push({ volume: name, message: volume.message });
      continue;
    }
    try {
      const outcome = await ensureUserVolume(actuator, volume.resource, observed);
      switch (outcome.state) {
        case 'created':
        case 'replaced':
          result.replaced.push(name);
          break;
        case 'inUse':
          result.inUse.push({ volume: name, folder, detail: outcome.detail });
          break;
        case 'ownData':
          result.kept.push({
            volume: name,
            folder,
            reason: 'differs from the template but holds its own data',
          });
          break;
        case 'conflict':
          result.kept.push({ volume: name, folder, reason: outcome.detail });
          break;
        case 'synced':
          break;
      }
    } catch (error) {
      result.errors.push({ volume: name, message: describeError(error) });
    }
  }
  await removeEarlierTasks(docker, input);
  return result;
}

/**
 * Swarm (20.10) keeps a finished job's task containers on every node, even once the service is
 * removed: each job would leave one behind per node for ever. A task removes the finished ones of
 * its HomeFolders' earlier jobs on its node. The controller no longer reads their logs: it reads
 * only the newest job's, this one, whose own container is still running.
 */
async function removeEarlierTasks(docker: Docker, input: VolumeCheckInput): Promise<void> {
  const finished = await docker.listContainers({
    all: true,
    filters: {
      label: [`${LABELS.volumeCheck}=${input.homeFolders}`, `${LABELS.owner}=${input.owner}`],
      status: ['created', 'exited', 'dead'],
    },
  });
  for (const container of finished) {
    // Left for the next job when it fails: nothing depends on it being gone.
    await docker
      .getContainer(container.Id)
      .remove({ v: false })
      .catch(() => undefined);
  }
}

/**
 * The test's Docker client; removing the Docker objects a test created (those carrying this run's
 * label and a name with the test's prefix); a user's running session, labelled the same way.
 */
import Dockerode from 'dockerode';
import { TEST_RUN_LABEL, testRunId } from './lab.js';

export const testDocker = new Dockerode({ socketPath: '/var/run/docker.sock' });

/** A container mounting a user's volume, as a running notebook does: while it runs the volume is in use. */
export async function startUserSession(
  name: string,
  volume: string,
  docker: Dockerode = testDocker,
): Promise<Dockerode.Container> {
  const session = await docker.createContainer({
    name,
    Image: 'local/busybox:1',
    Cmd: ['sleep', '3600'],
    Labels: { [TEST_RUN_LABEL]: testRunId() },
    HostConfig: { Binds: [`${volume}:/home/jovyan/work`] },
  });
  await session.start();
  return session;
}

/** `docker` is the lab engine unless a test works on another one (the cluster suite's manager). */
export async function removeTestObjects(namePrefix: string, docker: Dockerode = testDocker): Promise<void> {
  const filters = JSON.stringify({ label: [`${TEST_RUN_LABEL}=${testRunId()}`] });
  const mine = (name: string | undefined): boolean => (name ?? '').replace(/^\//, '').startsWith(namePrefix);

  // A Swarm worker (the cluster suite's nodes 2 and 3) has containers and volumes of its own, but
  // services, configs and secrets only on the manager, which refuses to list them elsewhere.
  const info = (await docker.info()) as { Swarm?: { ControlAvailable?: boolean } };
  const manager = info.Swarm?.ControlAvailable === true;
  const removedServices: string[] = [];
  const removedIds = new Set<string>();
  for (const service of manager ? await docker.listServices({ filters }) : []) {
    if (mine(service.Spec?.Name)) {
      await ignoreMissing(docker.getService(service.ID).remove());
      removedServices.push(service.Spec?.Name ?? '');
      removedIds.add(service.ID);
    }
  }
  // Swarm tears task containers down after the service is gone, and a task still starting can
  // create its volume meanwhile: wait for them before removing networks and volumes.
  for (let attempt = 0; attempt < 75 && removedServices.length > 0; attempt += 1) {
    const tasks = (
      await docker.listContainers({
        all: true,
        filters: JSON.stringify({ label: ['com.docker.swarm.service.name'] }),
      })
    ).filter((c) => removedServices.includes(c.Labels['com.docker.swarm.service.name'] ?? ''));
    // On other nodes too: the manager keeps a removed service's tasks until they have shut down.
    const remote = ((await docker.listTasks()) as { ServiceID?: string }[]).filter((t) =>
      removedIds.has(t.ServiceID ?? ''),
    );
    if (tasks.length === 0 && remote.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  // The test's own containers, and the tasks of its global jobs: Swarm (20.10) keeps a job's
  // finished task containers on every node after the service is gone.
  const tasks = JSON.stringify({ label: ['com.docker.swarm.service.name'] });
  for (const container of [
    ...(await docker.listContainers({ all: true, filters })),
    ...(await docker.listContainers({ all: true, filters: tasks })).filter((c) =>
      mine(c.Labels['com.docker.swarm.service.name']),
    ),
  ]) {
    if (container.Names.some(mine))
      await ignoreMissing(docker.getContainer(container.Id).remove({ force: true }));
  }
  // Task containers and their network endpoints take a moment to go after their service.
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const networks = (await docker.listNetworks({ filters })).filter((n) => mine(n.Name));
    const failures: unknown[] = [];
    for (const network of networks) {
      await docker
        .getNetwork(network.Id)
        .remove()
        .catch((error: unknown) => failures.push(error));
    }
    if (failures.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  // Per-user volumes come from a HomeFolders template, or from Swarm when a task starts, and carry
  // no test label: the random name prefix alone marks them as this test's.
  let lastFailure: unknown;
  for (let attempt = 0; attempt < 75; attempt += 1) {
    const { Volumes } = await docker.listVolumes();
    const failures: unknown[] = [];
    for (const volume of (Volumes ?? []).filter((v) => mine(v.Name))) {
      await ignoreMissing(docker.getVolume(volume.Name).remove()).catch((error: unknown) =>
        failures.push(error),
      );
    }
    lastFailure = failures[0];
    if (failures.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (lastFailure !== undefined)
    throw lastFailure instanceof Error ? lastFailure : new Error(JSON.stringify(lastFailure));
  if (!manager) return;
  for (const config of await docker.listConfigs({ filters })) {
    if (mine(config.Spec?.Name)) await ignoreMissing(docker.getConfig(config.ID).remove());
  }
  for (const secret of await docker.listSecrets({ filters })) {
    if (mine(secret.Spec?.Name)) await ignoreMissing(docker.getSecret(secret.ID).remove());
  }
}

async function ignoreMissing(operation: Promise<unknown>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    if (status !== 404) throw error;
  }
}

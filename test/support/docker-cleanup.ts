/** Removes the Docker objects a test created: those carrying this run's label and a name with the test's prefix. */
import Dockerode from 'dockerode';
import { TEST_RUN_LABEL, testRunId } from './lab.js';

export const testDocker = new Dockerode({ socketPath: '/var/run/docker.sock' });

export async function removeTestObjects(namePrefix: string): Promise<void> {
  const filters = JSON.stringify({ label: [`${TEST_RUN_LABEL}=${testRunId()}`] });
  const mine = (name: string | undefined): boolean => (name ?? '').replace(/^\//, '').startsWith(namePrefix);

  const removedServices: string[] = [];
  for (const service of await testDocker.listServices({ filters })) {
    if (mine(service.Spec?.Name)) {
      await ignoreMissing(testDocker.getService(service.ID).remove());
      removedServices.push(service.Spec?.Name ?? '');
    }
  }
  // Swarm tears task containers down after the service is gone, and a task still starting can
  // create its volume meanwhile: wait for them before removing networks and volumes.
  for (let attempt = 0; attempt < 75 && removedServices.length > 0; attempt += 1) {
    const tasks = (
      await testDocker.listContainers({
        all: true,
        filters: JSON.stringify({ label: ['com.docker.swarm.service.name'] }),
      })
    ).filter((c) => removedServices.includes(c.Labels['com.docker.swarm.service.name'] ?? ''));
    if (tasks.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  for (const container of await testDocker.listContainers({ all: true, filters })) {
    if (container.Names.some(mine))
      await ignoreMissing(testDocker.getContainer(container.Id).remove({ force: true }));
  }
  // Task containers and their network endpoints take a moment to go after their service.
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const networks = (await testDocker.listNetworks({ filters })).filter((n) => mine(n.Name));
    const failures: unknown[] = [];
    for (const network of networks) {
      await testDocker
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
    const { Volumes } = await testDocker.listVolumes();
    const failures: unknown[] = [];
    for (const volume of (Volumes ?? []).filter((v) => mine(v.Name))) {
      await ignoreMissing(testDocker.getVolume(volume.Name).remove()).catch((error: unknown) =>
        failures.push(error),
      );
    }
    lastFailure = failures[0];
    if (failures.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (lastFailure !== undefined)
    throw lastFailure instanceof Error ? lastFailure : new Error(JSON.stringify(lastFailure));
  for (const config of await testDocker.listConfigs({ filters })) {
    if (mine(config.Spec?.Name)) await ignoreMissing(testDocker.getConfig(config.ID).remove());
  }
  for (const secret of await testDocker.listSecrets({ filters })) {
    if (mine(secret.Spec?.Name)) await ignoreMissing(testDocker.getSecret(secret.ID).remove());
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

/** Docker reads and out-of-band writes the benchmarks make, by object name. */
import type Dockerode from 'dockerode';
import type { ContainerTaskSpec, NetworkInspectInfo, Service, ServiceSpec } from 'dockerode';
import { sleep, statusCode } from './util.js';

export type TaskSpec = ContainerTaskSpec;

export async function serviceByName(docker: Dockerode, name: string): Promise<Service | undefined> {
  try {
    return (await docker.getService(name).inspect()) as Service;
  } catch (error) {
    if (statusCode(error) === 404) return undefined;
    throw error;
  }
}

export function taskTemplate(service: Service | undefined): TaskSpec | undefined {
  return service?.Spec?.TaskTemplate;
}

/** The network with exactly this name (the engine's name filter matches substrings). */
export async function networkByName(
  docker: Dockerode,
  name: string,
): Promise<NetworkInspectInfo | undefined> {
  const list = await docker.listNetworks({ filters: JSON.stringify({ name: [name] }) });
  return list.find((n) => n.Name === name);
}

/**
 * Applies `mutate` to a fresh copy of the service's spec and sends it with the current version;
 * re-reads and retries when someone else updated it in between ("update out of sequence").
 */
export async function updateService(
  docker: Dockerode,
  name: string,
  mutate: (spec: ServiceSpec) => void,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const service = await serviceByName(docker, name);
    if (!service?.Spec || service.Version?.Index === undefined) throw new Error(`service ${name} not found`);
    const spec = structuredClone(service.Spec);
    mutate(spec);
    try {
      await docker.getService(service.ID).update({ version: service.Version.Index, ...spec });
      return;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (attempt < 10 && /out of sequence/i.test(message)) {
        await sleep(5 * attempt);
        continue;
      }
      throw error;
    }
  }
}

/** Tasks of a service that Swarm wants running, and how many of them run. */
export async function taskCounts(
  docker: Dockerode,
  serviceName: string,
): Promise<{ desired: number; running: number; up: number; total: number }> {
  const tasks = (await docker.listTasks({
    filters: JSON.stringify({ service: [serviceName] }),
  })) as { DesiredState?: string; Status?: { State?: string }; ServiceID?: string }[];
  const wanted = tasks.filter((t) => t.DesiredState === 'running');
  return {
    desired: wanted.length,
    running: wanted.filter((t) => t.Status?.State === 'running').length,
    // A task whose container has started but whose healthcheck has not passed yet is `starting`.
    up: wanted.filter((t) => t.Status?.State === 'running' || t.Status?.State === 'starting').length,
    total: tasks.length,
  };
}

/** Removes a network, retrying while Swarm still drains its endpoints. */
export async function removeNetworkWhenFree(
  docker: Dockerode,
  id: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await docker.getNetwork(id).remove();
      return;
    } catch (error) {
      if (statusCode(error) === 404) return;
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

export function envOf(service: Service | undefined): string[] {
  return taskTemplate(service)?.ContainerSpec?.Env ?? [];
}

export function imageOf(service: Service | undefined): string {
  return taskTemplate(service)?.ContainerSpec?.Image ?? '';
}

export function replicasOf(service: Service | undefined): number | undefined {
  return service?.Spec?.Mode?.Replicated?.Replicas;
}

export function networkTargets(service: Service | undefined): string[] {
  return (taskTemplate(service)?.Networks ?? service?.Spec?.Networks ?? []).map((n) => n.Target ?? '');
}

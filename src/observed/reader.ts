/**
 * What exists on the Docker side, read in bulk: one list call per kind for a snapshot, never one
 * inspect per object, so a full relist costs the same handful of calls at 10 objects or 10,000.
 */
import type Dockerode from 'dockerode';
import { DockerCallCounter } from './call-counter.js';
import type { Docker } from './docker-client.js';
import { field, httpStatusOf, isRecord, numberField, stringField, stringMapField } from './fields.js';

export type ServiceSpec = Dockerode.ServiceSpec;
/**
 * A service as the engine returns it from list or inspect (Spec, Version, Endpoint, UpdateStatus, ...).
 * This is dockerode's own type, so the reconciler's planners take it as is. @types/dockerode merges it
 * with the `Service` handle class: the handle's methods (`inspect`, `update`, ...) are not on these
 * plain objects.
 */
export type ServiceInspect = Dockerode.Service;
/** A network as listed: no `Containers` (use inspectNetwork for those). */
export type ObservedNetwork = Dockerode.NetworkInspectInfo;
export type ObservedConfig = Dockerode.ConfigInfo;
/** A container as listed (`docker ps -a`): Names keep Docker's leading slash. */
export type ObservedContainer = Dockerode.ContainerInfo;
export type ObservedContainerDetail = Dockerode.ContainerInspectInfo;

/** One Swarm task: a slot's attempt at running the service. History (shut-down tasks) is included. */
export interface ObservedTask {
  readonly id: string;
  readonly serviceId: string;
  /** Replicated services number their slots from 1; global services have none. */
  readonly slot: number | undefined;
  readonly nodeId: string | undefined;
  /** What Swarm wants: `running`, `shutdown`, ... */
  readonly desiredState: string;
  /** Where the task is: `new` … `running`, `complete`, `failed`, `rejected`, `shutdown`, ... */
  readonly state: string;
  readonly message: string | undefined;
  /** Why the task failed or was rejected, e.g. a volume mount error. */
  readonly error: string | undefined;
  readonly containerId: string | undefined;
  readonly exitCode: number | undefined;
  /** When the task last changed state (RFC 3339). */
  readonly timestamp: string | undefined;
}

export interface ObservedService {
  readonly id: string;
  readonly name: string;
  /** Version.Index: a service update must send it, and fails with "update out of sequence" when stale. */
  readonly version: number;
  readonly spec: ServiceSpec;
  /** ServiceSpec.Labels, where the controller keeps its bookkeeping (managed, spec-hash). */
  readonly labels: Readonly<Record<string, string>>;
  readonly tasks: readonly ObservedTask[];
  readonly inspect: ServiceInspect;
}

export interface VolumeUser {
  readonly containerId: string;
  readonly containerName: string;
  /** The container's state (`running`, `exited`, `created`, ...): a stopped container still blocks removal. */
  readonly state: string;
}

export interface ObservedVolume extends Dockerode.VolumeInspectInfo {
  /** Containers on this node that mount the volume; empty means it can be removed. */
  readonly usedBy: readonly VolumeUser[];
}

/** Secret metadata. The data is never read: the engine does not return it, and this type has no place for it. */
export interface ObservedSecret extends Pick<Dockerode.Secret, 'ID' | 'Version' | 'CreatedAt' | 'UpdatedAt'> {
  readonly Spec?: Omit<Dockerode.SecretSpec, 'Data'> | undefined;
}

export interface NetworkAttachedContainer {
  readonly id: string;
  readonly name: string;
}

/** A network inspected with `verbose`: who is attached, which decides whether it can be recreated. */
export interface ObservedNetworkDetail extends ObservedNetwork {
  /** Containers on this node attached to the network (service tasks included), without Swarm's load balancer. */
  readonly attachedContainers: readonly NetworkAttachedContainer[];
  /** Services with tasks attached on any node (Swarm-scoped networks, read from a manager). */
  readonly attachedServices: readonly string[];
}

export interface ObservedNode {
  readonly id: string;
  readonly hostname: string;
  /** `manager` or `worker`. */
  readonly role: string;
  /** `active`, `pause` or `drain`. */
  readonly availability: string;
  /** `ready`, `down`, `unknown` or `disconnected`. */
  readonly state: string;
  readonly address: string | undefined;
  readonly leader: boolean;
  /** Node labels (Spec.Labels), used in placement constraints. */
  readonly labels: Readonly<Record<string, string>>;
  readonly engineVersion: string | undefined;
  readonly version: number;
}

/** Everything that exists, by name, from one round of list calls. */
export interface ObservedSnapshot {
  /** When the lists were requested (ms since the epoch, local clock). */
  readonly takenAt: number;
  readonly services: ReadonlyMap<string, ObservedService>;
  /** When two networks share a name, the Swarm-scoped one is kept: that is the one services resolve. */
  readonly networks: ReadonlyMap<string, ObservedNetwork>;
  readonly volumes: ReadonlyMap<string, ObservedVolume>;
  readonly configs: ReadonlyMap<string, ObservedConfig>;
  readonly secrets: ReadonlyMap<string, ObservedSecret>;
  /** Keyed by name without Docker's leading slash. Includes stopped containers and service tasks. */
  readonly containers: ReadonlyMap<string, ObservedContainer>;
}

/** Read-only view of the Docker side. Single-object reads return undefined when the object does not exist. */
export interface ObservedReader {
  snapshot(): Promise<ObservedSnapshot>;
  nodes(): Promise<readonly ObservedNode[]>;
  /** The service with its current Version and tasks: re-read it after "update out of sequence". */
  inspectService(name: string): Promise<ObservedService | undefined>;
  inspectNetwork(name: string): Promise<ObservedNetworkDetail | undefined>;
  inspectVolume(name: string): Promise<ObservedVolume | undefined>;
  inspectConfig(name: string): Promise<ObservedConfig | undefined>;
  inspectSecret(name: string): Promise<ObservedSecret | undefined>;
  inspectContainer(name: string): Promise<ObservedContainerDetail | undefined>;
  /**
   * The volumes of this engine with their users, from node-local calls only: a worker answers
   * them too (the per-node volume check runs there).
   */
  volumes(): Promise<ReadonlyMap<string, ObservedVolume>>;
  /** What the service's tasks wrote to stdout, every node's, as text; undefined when the service is gone. */
  serviceLogs(name: string): Promise<string | undefined>;
}

export interface DockerObservedReaderOptions {
  /** Where API calls are counted; pass one shared with other adapters to see the total. */
  readonly counter?: DockerCallCounter;
  /**
   * Each API call is aborted after this long (default 30 s): an engine that stops answering must
   * fail the reconcile, not hang its worker for ever.
   */
  readonly requestTimeoutMs?: number;
}

export class DockerObservedReader implements ObservedReader {
  /** API calls this reader made, by dockerode method name. */
  readonly counter: DockerCallCounter;
  readonly #docker: Docker;
  readonly #timeoutMs: number;

  constructor(docker: Docker, options: DockerObservedReaderOptions = {}) {
    this.#docker = docker;
    this.counter = options.counter ?? new DockerCallCounter();
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  async snapshot(): Promise<ObservedSnapshot> {
    const takenAt = Date.now();
    const [services, tasks, networks, volumes, configs, secrets, containers] = await Promise.all([
      this.#call('listServices', (d, abortSignal) => d.listServices({ status: true, abortSignal })),
      this.#call('listTasks', (d, abortSignal) => d.listTasks({ abortSignal }) as Promise<unknown[]>),
      this.#call('listNetworks', (d, abortSignal) => d.listNetworks({ abortSignal })),
      this.#call('listVolumes', (d, abortSignal) => d.listVolumes({ abortSignal })),
      this.#call('listConfigs', (d, abortSignal) => d.listConfigs({ abortSignal })),
      this.#call('listSecrets', (d, abortSignal) => d.listSecrets({ abortSignal })),
      this.#call('listContainers', (d, abortSignal) => d.listContainers({ all: true, abortSignal })),
    ]);

    const tasksByService = groupTasks(tasks);
    const serviceMap = new Map<string, ObservedService>();
    for (const raw of services) {
      const service = toObservedService(raw, tasksByService.get(raw.ID) ?? []);
      if (service) serviceMap.set(service.name, service);
    }

    const networkMap = new Map<string, ObservedNetwork>();
    for (const network of networks) {
      const seen = networkMap.get(network.Name);
      if (!seen || (seen.Scope !== 'swarm' && network.Scope === 'swarm'))
        networkMap.set(network.Name, network);
    }

    const volumeMap = toVolumeMap(volumes, containers);

    const configMap = new Map<string, ObservedConfig>();
    for (const config of configs) {
      if (config.Spec?.Name !== undefined) configMap.set(config.Spec.Name, config);
    }

    const secretMap = new Map<string, ObservedSecret>();
    for (const secret of secrets) {
      const observed = withoutSecretData(secret);
      if (observed.Spec?.Name !== undefined) secretMap.set(observed.Spec.Name, observed);
    }

    const containerMap = new Map<string, ObservedContainer>();
    for (const container of containers) containerMap.set(containerName(container), container);

    return {
      takenAt,
      services: serviceMap,
      networks: networkMap,
      volumes: volumeMap,
      configs: configMap,
      secrets: secretMap,
      containers: containerMap,
    };
  }

  async nodes(): Promise<readonly ObservedNode[]> {
    const nodes = await this.#call(
      'listNodes',
      (d, abortSignal) => d.listNodes({ abortSignal }) as Promise<unknown[]>,
    );
    return nodes.flatMap((raw) => {
      const node = toObservedNode(raw);
      return node ? [node] : [];
    });
  }

  async inspectService(name: string): Promise<ObservedService | undefined> {
    const [raw, tasks] = await Promise.all([
      orUndefined(
        this.#call(
          'inspectService',
          (d, abortSignal) => d.getService(name).inspect({ abortSignal }) as Promise<unknown>,
        ),
      ),
      // The `service` filter takes a name as well as an ID, so both calls can go out at once; the
      // engine answers 404 for it too when the service is gone.
      orUndefined(
        this.#call(
          'listTasks',
          (d, abortSignal) =>
            d.listTasks({ filters: { service: [name] }, abortSignal }) as Promise<unknown[]>,
        ),
      ),
    ]);
    if (!isRecord(raw)) return undefined;
    const service = raw as unknown as ServiceInspect;
    // The service may have been replaced between the two calls: keep only tasks of the one inspected.
    return toObservedService(service, groupTasks(tasks ?? []).get(service.ID) ?? []);
  }

  async inspectNetwork(name: string): Promise<ObservedNetworkDetail | undefined> {
    const raw = await orUndefined(
      this.#call('inspectNetwork', (d, abortSignal) => {
        const network = d.getNetwork(name);
        return withOptions(network.inspect.bind(network), { verbose: true, abortSignal });
      }),
    );
    if (!isRecord(raw)) return undefined;
    return toNetworkDetail(raw as unknown as ObservedNetwork, raw);
  }

  async inspectVolume(name: string): Promise<ObservedVolume | undefined> {
    const [volume, containers] = await Promise.all([
      orUndefined(
        this.#call('inspectVolume', (d, abortSignal) => d.getVolume(name).inspect({ abortSignal })),
      ),
      this.#call('listContainers', (d, abortSignal) =>
        d.listContainers({ all: true, filters: { volume: [name] }, abortSignal }),
      ),
    ]);
    if (!volume) return undefined;
    return { ...volume, usedBy: volumeUsers(containers).get(name) ?? [] };
  }

  async volumes(): Promise<ReadonlyMap<string, ObservedVolume>> {
    const [volumes, containers] = await Promise.all([
      this.#call('listVolumes', (d, abortSignal) => d.listVolumes({ abortSignal })),
      this.#call('listContainers', (d, abortSignal) => d.listContainers({ all: true, abortSignal })),
    ]);
    return toVolumeMap(volumes, containers);
  }

  async serviceLogs(name: string): Promise<string | undefined> {
    const raw = await orUndefined(
      this.#call('serviceLogs', (d, abortSignal) => {
        const service = d.getService(name);
        // Without `follow` dockerode answers with the whole body at once.
        return withOptions(service.logs.bind(service), { stdout: true, follow: false, abortSignal });
      }),
    );
    if (raw === undefined) return undefined;
    if (Buffer.isBuffer(raw)) return demuxLogs(raw);
    return typeof raw === 'string' ? raw : '';
  }

  async inspectConfig(name: string): Promise<ObservedConfig | undefined> {
    return orUndefined(
      this.#call('inspectConfig', (d, abortSignal) => d.getConfig(name).inspect({ abortSignal })),
    );
  }

  async inspectSecret(name: string): Promise<ObservedSecret | undefined> {
    const secret = await orUndefined(
      this.#call('inspectSecret', (d, abortSignal) => d.getSecret(name).inspect({ abortSignal })),
    );
    return secret ? withoutSecretData(secret) : undefined;
  }

  async inspectContainer(name: string): Promise<ObservedContainerDetail | undefined> {
    return orUndefined(
      this.#call('inspectContainer', (d, abortSignal) => d.getContainer(name).inspect({ abortSignal })),
    );
  }

  /** One counted API call, rejected with a TimeoutError when it outlasts the request timeout. */
  #call<T>(method: string, run: (docker: Docker, abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    return this.counter.call(method, () => settleBy(run(this.#docker, signal), signal));
  }
}

/**
 * Settles when the request does or the signal aborts, whichever is first. dockerode also closes the
 * request on abort, but not for every method (network inspect ignores the signal).
 */
function settleBy<T>(request: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    void request.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Calls a dockerode method with options @types/dockerode does not declare; dockerode passes them
 * on as the query string.
 */
function withOptions(
  bound: (...args: never[]) => unknown,
  options: Record<string, unknown>,
): Promise<unknown> {
  return (bound as unknown as (opts: Record<string, unknown>) => Promise<unknown>)(options);
}

/** Resolves to undefined on 404, so callers can tell "gone" from "engine unreachable" (which still rejects). */
async function orUndefined<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error: unknown) {
    if (httpStatusOf(error) === 404) return undefined;
    throw error;
  }
}

function toObservedService(raw: ServiceInspect, tasks: readonly ObservedTask[]): ObservedService | undefined {
  const name = raw.Spec?.Name;
  if (raw.Spec === undefined || name === undefined) return undefined;
  return {
    id: raw.ID,
    name,
    version: raw.Version?.Index ?? 0,
    spec: raw.Spec,
    labels: raw.Spec.Labels ?? {},
    tasks,
    inspect: raw,
  };
}

function groupTasks(tasks: readonly unknown[]): Map<string, ObservedTask[]> {
  const byService = new Map<string, ObservedTask[]>();
  for (const raw of tasks) {
    const task = toObservedTask(raw);
    if (!task) continue;
    const list = byService.get(task.serviceId);
    if (list) list.push(task);
    else byService.set(task.serviceId, [task]);
  }
  return byService;
}

function toObservedTask(raw: unknown): ObservedTask | undefined {
  const id = stringField(raw, 'ID');
  const serviceId = stringField(raw, 'ServiceID');
  if (id === undefined || serviceId === undefined) return undefined;
  const status = field(raw, 'Status');
  const containerStatus = field(status, 'ContainerStatus');
  return {
    id,
    serviceId,
    slot: numberField(raw, 'Slot'),
    nodeId: stringField(raw, 'NodeID'),
    desiredState: stringField(raw, 'DesiredState') ?? 'unknown',
    state: stringField(status, 'State') ?? 'unknown',
    message: stringField(status, 'Message'),
    error: stringField(status, 'Err'),
    containerId: stringField(containerStatus, 'ContainerID'),
    exitCode: numberField(containerStatus, 'ExitCode'),
    timestamp: stringField(status, 'Timestamp'),
  };
}

function toObservedNode(raw: unknown): ObservedNode | undefined {
  const id = stringField(raw, 'ID');
  if (id === undefined) return undefined;
  const spec = field(raw, 'Spec');
  const status = field(raw, 'Status');
  const managerStatus = field(raw, 'ManagerStatus');
  return {
    id,
    hostname: stringField(field(raw, 'Description'), 'Hostname') ?? '',
    role: stringField(spec, 'Role') ?? 'unknown',
    availability: stringField(spec, 'Availability') ?? 'unknown',
    state: stringField(status, 'State') ?? 'unknown',
    address: stringField(status, 'Addr'),
    leader: field(managerStatus, 'Leader') === true,
    labels: stringMapField(spec, 'Labels'),
    engineVersion: stringField(field(field(raw, 'Description'), 'Engine'), 'EngineVersion'),
    version: numberField(field(raw, 'Version'), 'Index') ?? 0,
  };
}

function withoutSecretData(secret: Dockerode.Secret): ObservedSecret {
  // The engine never returns secret data; copying field by field keeps that true whatever it sends.
  const { ID, Version, CreatedAt, UpdatedAt } = secret;
  const meta = { ID, Version, CreatedAt, UpdatedAt };
  if (secret.Spec === undefined) return meta;
  const { Data: _data, ...spec } = secret.Spec;
  return { ...meta, Spec: spec };
}

function containerName(container: ObservedContainer): string {
  // Legacy links add names like /other/alias; the container's own name is the one with a single slash.
  const own = container.Names.find((n) => n.lastIndexOf('/') === 0) ?? container.Names[0] ?? container.Id;
  return own.replace(/^\//, '');
}

/** The engine answers `"Volumes": null` when there are none. */
function toVolumeMap(
  volumes: { readonly Volumes: unknown },
  containers: readonly ObservedContainer[],
): Map<string, ObservedVolume> {
  const users = volumeUsers(containers);
  const volumeMap = new Map<string, ObservedVolume>();
  for (const volume of (volumes.Volumes as Dockerode.VolumeInspectInfo[] | null) ?? []) {
    volumeMap.set(volume.Name, { ...volume, usedBy: users.get(volume.Name) ?? [] });
  }
  return volumeMap;
}

/**
 * Docker's log stream without a TTY: frames of an 8-byte header (stream, 3 zero bytes, big-endian
 * length) and the payload. A body without that framing (a TTY service) is returned as it is.
 */
export function demuxLogs(body: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= body.length) {
    const stream = body[offset];
    if ((stream !== 0 && stream !== 1 && stream !== 2) || body.readUIntBE(offset + 1, 3) !== 0) {
      return body.toString('utf8');
    }
    const size = body.readUInt32BE(offset + 4);
    parts.push(body.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  if (offset < body.length && parts.length === 0) return body.toString('utf8');
  return Buffer.concat(parts).toString('utf8');
}

function volumeUsers(containers: readonly ObservedContainer[]): Map<string, VolumeUser[]> {
  const byVolume = new Map<string, VolumeUser[]>();
  for (const container of containers) {
    for (const mount of container.Mounts) {
      if (mount.Type !== 'volume' || mount.Name === undefined) continue;
      const user = {
        containerId: container.Id,
        containerName: containerName(container),
        state: container.State,
      };
      const list = byVolume.get(mount.Name);
      if (list) list.push(user);
      else byVolume.set(mount.Name, [user]);
    }
  }
  return byVolume;
}

function toNetworkDetail(
  network: ObservedNetwork,
  raw: Readonly<Record<string, unknown>>,
): ObservedNetworkDetail {
  const attachedContainers: NetworkAttachedContainer[] = [];
  const containers = field(raw, 'Containers');
  if (isRecord(containers)) {
    for (const [id, entry] of Object.entries(containers)) {
      // Swarm's per-network load balancer shows up as a pseudo-container keyed `lb-<network>`.
      if (id.startsWith('lb-')) continue;
      attachedContainers.push({ id, name: stringField(entry, 'Name') ?? '' });
    }
  }
  const services = field(raw, 'Services');
  // The "" entry collects plain containers; every other key is a service name.
  const attachedServices = isRecord(services) ? Object.keys(services).filter((s) => s !== '') : [];
  return { ...network, attachedContainers, attachedServices };
}

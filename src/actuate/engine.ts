/**
 * The Engine API calls the actuator makes, typed, counted, bounded in time, and with every failure
 * turned into a DockerRequestError (see docker-errors.ts).
 *
 * Bodies go to docker-modem as `{_query, _body}`: for paths that end in `?` (create network,
 * volume, config, secret, container; update service, config, secret) it otherwise serialises the
 * whole options object into the query string as well, which sends secret data in the URL and can
 * outgrow the engine's header limit.
 */
import type Dockerode from 'dockerode';
import type {
  ContainerCreateOptions,
  ContainerInfo,
  ContainerInspectInfo,
  NetworkCreateOptions,
  NetworkInspectInfo,
  ServiceSpec,
  VolumeCreateOptions,
  VolumeInspectInfo,
} from 'dockerode';
import type { DockerCallCounter } from '../observed/call-counter.js';
import type { Docker } from '../observed/docker-client.js';
import { toDockerError } from './docker-errors.js';

/** A service as inspected: the data, not dockerode's handle class it is merged with. */
export type ServiceInspect = Pick<Dockerode.Service, 'ID' | 'Version' | 'Spec'>;

/** What an endpoint on a network is given when a container connects: its aliases. */
export interface EndpointOptions {
  readonly aliases?: readonly string[];
}

/** dockerode's declared option types know nothing of `_query`/`_body`; this is what it really takes. */
interface RawRequest {
  readonly _query: Record<string, string | number>;
  readonly _body: unknown;
  readonly abortSignal: AbortSignal;
}

export class Engine {
  readonly #docker: Docker;
  readonly #counter: DockerCallCounter;
  readonly #timeoutMs: number;

  constructor(docker: Docker, counter: DockerCallCounter, timeoutMs: number) {
    this.#docker = docker;
    this.#counter = counter;
    this.#timeoutMs = timeoutMs;
  }

  // Services

  async createService(spec: ServiceSpec): Promise<string> {
    const handle = await this.#call('createService', `create service ${spec.Name ?? ''}`, (d, signal) =>
      // With the options as the only argument dockerode sends them as X-Registry-Auth as well.
      d.createService(NO_REGISTRY_AUTH, raw({}, spec, signal) as ServiceSpec),
    );
    return handle.id;
  }

  async updateService(id: string, version: number, spec: ServiceSpec, label: string): Promise<void> {
    await this.#call(
      'updateService',
      `update service ${label}`,
      (d, signal) => d.getService(id).update(raw({ version }, spec, signal)) as Promise<unknown>,
    );
  }

  async inspectService(idOrName: string): Promise<ServiceInspect> {
    return this.#call(
      'inspectService',
      `inspect service ${idOrName}`,
      (d, abortSignal) => d.getService(idOrName).inspect({ abortSignal }) as Promise<ServiceInspect>,
    );
  }

  async listServices(): Promise<ServiceInspect[]> {
    return this.#call(
      'listServices',
      'list services',
      (d, abortSignal) => d.listServices({ abortSignal }) as Promise<ServiceInspect[]>,
    );
  }

  async removeService(id: string, label: string): Promise<void> {
    await this.#call('removeService', `remove service ${label}`, (d, abortSignal) =>
      d.getService(id).remove({ abortSignal }),
    );
  }

  // Networks

  async createNetwork(body: NetworkCreateOptions): Promise<string> {
    const handle = await this.#call('createNetwork', `create network ${body.Name}`, (d, signal) =>
      d.createNetwork(raw({}, body, signal) as unknown as NetworkCreateOptions),
    );
    return handle.id;
  }

  /** Verbose: with the Services section a manager fills in from every node. */
  async inspectNetwork(idOrName: string): Promise<NetworkInspectInfo & { Services?: unknown }> {
    return this.#call('inspectNetwork', `inspect network ${idOrName}`, (d, abortSignal) => {
      const network = d.getNetwork(idOrName);
      // @types/dockerode omits the options argument that dockerode passes on as the query string.
      const inspect = network.inspect.bind(network) as unknown as (opts: {
        verbose: boolean;
        abortSignal: AbortSignal;
      }) => Promise<NetworkInspectInfo>;
      return inspect({ verbose: true, abortSignal });
    });
  }

  async removeNetwork(id: string, label: string): Promise<void> {
    await this.#call(
      'removeNetwork',
      `remove network ${label}`,
      (d, abortSignal) => d.getNetwork(id).remove({ abortSignal }) as Promise<unknown>,
    );
  }

  async connectNetwork(networkId: string, containerId: string, endpoint: EndpointOptions, label: string) {
    await this.#call(
      'connectNetwork',
      `connect ${label}`,
      (d, abortSignal) =>
        d.getNetwork(networkId).connect({
          Container: containerId,
          EndpointConfig: endpoint.aliases?.length ? { Aliases: [...endpoint.aliases] } : {},
          abortSignal,
        } as Dockerode.NetworkConnectOptions) as Promise<unknown>,
    );
  }

  async disconnectNetwork(networkId: string, containerId: string, label: string): Promise<void> {
    await this.#call(
      'disconnectNetwork',
      `disconnect ${label}`,
      (d, abortSignal) =>
        d
          .getNetwork(networkId)
          .disconnect({ Container: containerId, Force: false, abortSignal }) as Promise<unknown>,
    );
  }

  // Volumes

  async createVolume(body: VolumeCreateOptions): Promise<void> {
    await this.#call('createVolume', `create volume ${body.Name ?? ''}`, (d, signal) =>
      d.createVolume(raw({}, body, signal) as unknown as VolumeCreateOptions),
    );
  }

  async inspectVolume(name: string): Promise<VolumeInspectInfo> {
    return this.#call('inspectVolume', `inspect volume ${name}`, (d, abortSignal) =>
      d.getVolume(name).inspect({ abortSignal }),
    );
  }

  async removeVolume(name: string): Promise<void> {
    await this.#call(
      'removeVolume',
      `remove volume ${name}`,
      (d, abortSignal) => d.getVolume(name).remove({ abortSignal }) as Promise<unknown>,
    );
  }

  /** Containers on this node, stopped ones included, that mount volume `name`. */
  async containersUsingVolume(name: string): Promise<ContainerInfo[]> {
    return this.#call('listContainers', `list containers using volume ${name}`, (d, abortSignal) =>
      d.listContainers({ all: true, filters: { volume: [name] }, abortSignal }),
    );
  }

  // Configs and secrets

  async createConfig(body: PayloadCreateBody): Promise<string> {
    const handle = (await this.#call('createConfig', `create config ${body.Name}`, (d, signal) =>
      d.createConfig(raw({}, body, signal)),
    )) as { id: string };
    return handle.id;
  }

  async createSecret(body: PayloadCreateBody): Promise<string> {
    const handle = (await this.#call('createSecret', `create secret ${body.Name}`, (d, signal) =>
      d.createSecret(raw({}, body, signal)),
    )) as { id: string };
    return handle.id;
  }

  async inspectPayload(kind: PayloadKind, id: string): Promise<PayloadInfo> {
    return this.#call(`inspect${kind}`, `inspect ${kind.toLowerCase()} ${id}`, (d, abortSignal) =>
      kind === 'Config'
        ? (d.getConfig(id).inspect({ abortSignal }) as Promise<PayloadInfo>)
        : (d.getSecret(id).inspect({ abortSignal }) as Promise<PayloadInfo>),
    );
  }

  async listPayloads(kind: PayloadKind, labels: readonly string[]): Promise<PayloadInfo[]> {
    const filters = { label: [...labels] };
    return this.#call(`list${kind}s`, `list ${kind.toLowerCase()}s`, (d, abortSignal) =>
      kind === 'Config'
        ? (d.listConfigs({ filters, abortSignal } as object) as Promise<PayloadInfo[]>)
        : (d.listSecrets({ filters, abortSignal } as object) as Promise<PayloadInfo[]>),
    );
  }

  async updatePayload(kind: PayloadKind, id: string, version: number, body: object, label: string) {
    await this.#call(`update${kind}`, `update ${kind.toLowerCase()} ${label}`, (d, signal) => {
      const handle = kind === 'Config' ? d.getConfig(id) : d.getSecret(id);
      return handle.update(raw({ version }, body, signal)) as Promise<unknown>;
    });
  }

  async removePayload(kind: PayloadKind, id: string, label: string): Promise<void> {
    await this.#call(`remove${kind}`, `remove ${kind.toLowerCase()} ${label}`, (d, abortSignal) =>
      kind === 'Config'
        ? (d.getConfig(id).remove({ abortSignal }) as Promise<unknown>)
        : (d.getSecret(id).remove({ abortSignal }) as Promise<unknown>),
    );
  }

  // Containers

  async createContainer(options: ContainerCreateOptions): Promise<string> {
    const { name, ...body } = options;
    const handle = await this.#call('createContainer', `create container ${name ?? ''}`, (d, signal) =>
      d.createContainer(raw(name === undefined ? {} : { name }, body, signal) as ContainerCreateOptions),
    );
    return handle.id;
  }

  async inspectContainer(idOrName: string): Promise<ContainerInspectInfo> {
    return this.#call('inspectContainer', `inspect container ${idOrName}`, (d, abortSignal) =>
      d.getContainer(idOrName).inspect({ abortSignal }),
    );
  }

  /** Starts the container; one already running counts as started (the engine answers 304). */
  async startContainer(id: string, label: string): Promise<void> {
    await this.#call('startContainer', `start container ${label}`, async (d, abortSignal) => {
      try {
        await (d.getContainer(id).start({ abortSignal }) as Promise<unknown>);
      } catch (error: unknown) {
        if (!isNotModified(error)) throw error;
      }
    });
  }

  /** Stops the container; one already stopped counts as stopped (304). */
  async stopContainer(id: string, label: string, timeoutSeconds: number | undefined): Promise<void> {
    await this.#call('stopContainer', `stop container ${label}`, async (d, abortSignal) => {
      try {
        await (d.getContainer(id).stop({
          ...(timeoutSeconds === undefined ? {} : { t: timeoutSeconds }),
          abortSignal,
        }) as Promise<unknown>);
      } catch (error: unknown) {
        if (!isNotModified(error)) throw error;
      }
    });
  }

  async removeContainer(id: string, label: string): Promise<void> {
    await this.#call(
      'removeContainer',
      `remove container ${label}`,
      (d, abortSignal) =>
        // `v: false`: named volumes outlive the container; the Volume resource decides about them.
        d.getContainer(id).remove({ v: false, force: false, abortSignal }) as Promise<unknown>,
    );
  }

  /**
   * One counted call, rejected with a DockerRequestError when it fails or outlasts the request
   * timeout. The signal also goes to dockerode, which closes the socket where it supports it.
   */
  async #call<T>(
    method: string,
    operation: string,
    run: (docker: Docker, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    try {
      return await this.#counter.call(method, () => settleBy(run(this.#docker, signal), signal));
    } catch (error: unknown) {
      throw toDockerError(error, operation);
    }
  }
}

export type PayloadKind = 'Config' | 'Secret';

/** ConfigSpec or SecretSpec: a name, labels, base64 data, perhaps a driver. */
export interface PayloadCreateBody {
  readonly Name: string;
  readonly Labels?: Readonly<Record<string, string>> | undefined;
  readonly Data?: string | undefined;
}

/** A config or secret as listed or inspected; a secret's Data never comes back. */
export interface PayloadInfo {
  readonly ID: string;
  readonly Version?: { readonly Index?: number };
  readonly Spec?: { readonly Name?: string; readonly Labels?: Record<string, string> };
}

/** Images come from the local engine or a registry that needs no credentials. */
const NO_REGISTRY_AUTH = undefined as unknown as Dockerode.AuthConfig;

function raw(query: Record<string, string | number>, body: unknown, abortSignal: AbortSignal): RawRequest {
  return { _query: query, _body: body, abortSignal };
}

function isNotModified(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { statusCode?: unknown }).statusCode === 304
  );
}

/** Settles when the request does or the signal aborts: not every dockerode method honours the signal. */
function settleBy<T>(request: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    void request.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The one place a Docker client is built. Only the local engine is supported: a unix socket, or plain
 * TCP to localhost (no TLS, so nothing else would be safe to talk to).
 */
import Dockerode from 'dockerode';
import { ConfigError } from '../errors.js';
import { booleanField, field, stringField } from './fields.js';

/** The client type, so other modules can name it without importing dockerode. */
export type Docker = Dockerode;

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface DockerConnectionOptions {
  /** A unix socket path; wins over `host` and DOCKER_HOST. */
  readonly socketPath?: string;
  /** A DOCKER_HOST-style address, `unix:///path` or `tcp://localhost:2375`; wins over DOCKER_HOST. */
  readonly host?: string;
}

export type DockerEndpoint =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * Where the client will connect: `options`, else DOCKER_HOST, else the default socket.
 * Throws ConfigError for anything but `unix://` or `tcp://` to a loopback address.
 */
export function resolveDockerEndpoint(
  options: DockerConnectionOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): DockerEndpoint {
  if (options.socketPath !== undefined) return { kind: 'unix', socketPath: options.socketPath };
  const address = options.host ?? env.DOCKER_HOST;
  if (address === undefined || address === '') return { kind: 'unix', socketPath: DEFAULT_DOCKER_SOCKET };
  if (address.startsWith('unix://')) {
    return { kind: 'unix', socketPath: address.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET };
  }
  if (address.startsWith('tcp://')) {
    let url: URL;
    try {
      url = new URL(address);
    } catch {
      throw new ConfigError(`DOCKER_HOST ${address} is not a valid tcp:// address`);
    }
    if (!LOOPBACK_HOSTS.has(url.hostname)) {
      throw new ConfigError(
        `DOCKER_HOST ${address}: only a local engine (localhost) is supported over tcp://`,
      );
    }
    if (url.pathname !== '' && url.pathname !== '/') {
      throw new ConfigError(`DOCKER_HOST ${address}: a path prefix is not supported`);
    }
    return {
      kind: 'tcp',
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : 2375,
    };
  }
  throw new ConfigError(`DOCKER_HOST ${address}: only unix:// and tcp:// (localhost) are supported`);
}

/** A dockerode client for the local engine; see resolveDockerEndpoint for the address rules. */
export function createDocker(options: DockerConnectionOptions = {}): Docker {
  const endpoint = resolveDockerEndpoint(options);
  // docker-modem also reads DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and DOCKER_CLIENT_TIMEOUT on
  // its own and merges them under ours: spell out every connection field so only the address chosen
  // above is used, and so no client timeout cuts the long-lived events stream.
  const common = {
    protocol: 'http',
    ca: undefined,
    cert: undefined,
    key: undefined,
    timeout: undefined,
  } as const;
  return endpoint.kind === 'unix'
    ? new Dockerode({ ...common, socketPath: endpoint.socketPath, host: undefined, port: undefined })
    : new Dockerode({ ...common, host: endpoint.host, port: endpoint.port, socketPath: undefined });
}

export interface DockerStatus {
  /** Engine version, e.g. `20.10.24+dfsg1`. */
  readonly engineVersion: string;
  /** The newest API version the engine speaks, e.g. `1.41`. */
  readonly apiVersion: string;
  readonly swarm: {
    /** `inactive`, `pending`, `active`, `error` or `locked`: only `active` lets the controller work. */
    readonly localNodeState: string;
    /** True on a manager: services, configs and secrets can be read and written only there. */
    readonly controlAvailable: boolean;
    readonly nodeId: string;
  };
  /** The engine host's name (`docker info` Name), for people reading per-node results. */
  readonly hostname: string;
}

/** Engine version and Swarm state, for /readyz and the startup log. Rejects when the engine is unreachable. */
export async function pingDocker(docker: Docker): Promise<DockerStatus> {
  const [info, version] = await Promise.all([docker.info() as Promise<unknown>, docker.version()]);
  const swarm = field(info, 'Swarm');
  return {
    engineVersion: stringField(info, 'ServerVersion') ?? version.Version,
    apiVersion: version.ApiVersion,
    swarm: {
      localNodeState: stringField(swarm, 'LocalNodeState') ?? 'unknown',
      controlAvailable: booleanField(swarm, 'ControlAvailable') ?? false,
      nodeId: stringField(swarm, 'NodeID') ?? '',
    },
    hostname: stringField(info, 'Name') ?? '',
  };
}

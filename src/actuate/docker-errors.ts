/**
 * dockerode errors → {@link DockerRequestError}. dockerode (docker-modem) raises an Error with
 * `statusCode` and the parsed body in `json` for every non-2xx reply, and a Node system error
 * (`code: 'ECONNREFUSED'`, ...) when the socket fails; the engine's wording, not its status, is what
 * tells "in use" from "already exists" (a volume in use and a container name taken are both 409).
 */
import { DockerRequestError, ERROR_CODES, SwarmkeeperError, type DockerErrorCode } from '../errors.js';
import { field, httpStatusOf, isRecord, stringField } from '../observed/fields.js';

const OUT_OF_SEQUENCE = /update out of sequence/i;
const NAME_TAKEN = /already exists|name conflicts with an existing object|is already in use by container/i;
const NOT_FOUND = /\bnot found\b|\bno such\b/i;
const IN_USE = /\bin use\b|has active endpoints|is being used/i;

/** Node system error codes that mean the engine is not reachable, not that it refused. */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EACCES',
  'ESOCKETTIMEDOUT',
  'UND_ERR_SOCKET',
]);

/**
 * The typed form of an error a Docker call raised while doing `operation` (e.g. `remove config
 * skx-conf-1a2b3c4d`). SwarmkeeperErrors pass through unchanged. Anything that is neither an
 * engine reply nor a connection failure (a bug in the caller) is returned as is, not disguised as
 * a Docker problem.
 */
export function toDockerError(error: unknown, operation: string): Error {
  if (error instanceof SwarmkeeperError) return error;
  const status = httpStatusOf(error);
  if (status === undefined) {
    if (isConnectionFailure(error)) {
      return new DockerRequestError(ERROR_CODES.DOCKER_UNAVAILABLE, operation, {
        engineMessage: messageOf(error),
        cause: error,
      });
    }
    return error instanceof Error ? error : new Error(`${operation}: ${String(error)}`);
  }
  const message = engineMessage(error);
  return new DockerRequestError(classify(status, message), operation, {
    statusCode: status,
    engineMessage: message,
    cause: error,
  });
}

/** True when `error` is a DockerRequestError with one of `codes`. */
export function hasDockerCode(error: unknown, ...codes: DockerErrorCode[]): error is DockerRequestError {
  return error instanceof DockerRequestError && codes.includes(error.code);
}

function classify(status: number, message: string): DockerErrorCode {
  if (OUT_OF_SEQUENCE.test(message)) return ERROR_CODES.DOCKER_OUT_OF_SEQUENCE;
  // Swarm answers 500 "network … not found" for a network its store has dropped but the node still lists.
  if (status === 404 || NOT_FOUND.test(message)) return ERROR_CODES.DOCKER_NOT_FOUND;
  if (NAME_TAKEN.test(message)) return ERROR_CODES.DOCKER_CONFLICT;
  if (IN_USE.test(message)) return ERROR_CODES.DOCKER_IN_USE;
  if (status === 409) return ERROR_CODES.DOCKER_CONFLICT;
  if (status === 503) return ERROR_CODES.DOCKER_UNAVAILABLE;
  if (status >= 500) return ERROR_CODES.DOCKER_ENGINE;
  return ERROR_CODES.DOCKER_REJECTED;
}

/** The engine's `{"message": ...}`, or the raw body docker-modem kept when it was not JSON. */
function engineMessage(error: unknown): string {
  const json = field(error, 'json');
  const fromJson = stringField(json, 'message');
  if (fromJson !== undefined) return fromJson.trim();
  if (typeof json === 'string' && json.trim() !== '') return json.trim();
  if (Buffer.isBuffer(json) && json.length > 0) return json.toString('utf8').trim();
  return messageOf(error);
}

function isConnectionFailure(error: unknown): boolean {
  const code = stringField(error, 'code');
  if (code !== undefined && CONNECTION_CODES.has(code)) return true;
  const name = stringField(error, 'name');
  // A request cut by its AbortSignal.timeout(): the engine did not answer in time.
  return name === 'TimeoutError' || name === 'AbortError';
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (isRecord(error)) return stringField(error, 'message') ?? 'unknown error';
  return String(error);
}

/**
 * Every error swarmkeeper raises on purpose, each with a stable `code`.
 * README.md lists the codes; test/unit/errors.test.ts checks that the list stays complete.
 */

/** A field-level problem in a manifest, a Redis record or an API body. `path` is dotted, e.g. `spec.replicas`. */
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
  /** `file:line` where the field was written, when it came from a file. */
  readonly location?: string;
}

export const ERROR_CODES = {
  INVALID_RESOURCE: 'SK_INVALID_RESOURCE',
  MANIFEST_PARSE: 'SK_MANIFEST_PARSE',
  MANIFEST_READ: 'SK_MANIFEST_READ',
  STORE_UNAVAILABLE: 'SK_STORE_UNAVAILABLE',
  NOT_FOUND: 'SK_NOT_FOUND',
  CONFIG: 'SK_CONFIG',
  NOT_LEADER: 'SK_NOT_LEADER',
  USAGE: 'SK_USAGE',
  DOCKER_UNAVAILABLE: 'SK_DOCKER_UNAVAILABLE',
  DOCKER_OUT_OF_SEQUENCE: 'SK_DOCKER_OUT_OF_SEQUENCE',
  DOCKER_IN_USE: 'SK_DOCKER_IN_USE',
  DOCKER_CONFLICT: 'SK_DOCKER_CONFLICT',
  DOCKER_NOT_FOUND: 'SK_DOCKER_NOT_FOUND',
  DOCKER_REJECTED: 'SK_DOCKER_REJECTED',
  DOCKER_ENGINE: 'SK_DOCKER_ENGINE',
  NOT_OWNED: 'SK_NOT_OWNED',
  ACTUATION_TIMEOUT: 'SK_ACTUATION_TIMEOUT',
  HOME_UNSAFE_PATH: 'SK_HOME_UNSAFE_PATH',
  HOME_CONFLICT: 'SK_HOME_CONFLICT',
  HOME_ROOT_UNAVAILABLE: 'SK_HOME_ROOT_UNAVAILABLE',
  UNAUTHORIZED: 'SK_UNAUTHORIZED',
  RATE_LIMITED: 'SK_RATE_LIMITED',
  HTTP_REQUEST: 'SK_HTTP_REQUEST',
  QUOTA_COMMAND: 'SK_QUOTA_COMMAND',
  QUOTA_REPORT: 'SK_QUOTA_REPORT',
  QUOTA_INVALID_ENTRY: 'SK_QUOTA_INVALID_ENTRY',
  QUOTA_IDS_EXHAUSTED: 'SK_QUOTA_IDS_EXHAUSTED',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export abstract class SwarmkeeperError extends Error {
  abstract readonly code: ErrorCode;
}

/** Input that failed validation; carries every failing field, not just the first. */
export class InvalidResourceError extends SwarmkeeperError {
  readonly code = ERROR_CODES.INVALID_RESOURCE;
  constructor(
    readonly subject: string,
    readonly issues: readonly FieldIssue[],
  ) {
    super(`${subject} is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'InvalidResourceError';
  }
}

/** A manifest file that is not well-formed YAML or JSON, or breaks the parser's safety limits. */
export class ManifestParseError extends SwarmkeeperError {
  readonly code = ERROR_CODES.MANIFEST_PARSE;
  constructor(
    readonly location: string,
    message: string,
  ) {
    super(`${location}: ${message}`);
    this.name = 'ManifestParseError';
  }
}

/** A manifest path, or a file a manifest refers to, that cannot be read. */
export class ManifestReadError extends SwarmkeeperError {
  readonly code = ERROR_CODES.MANIFEST_READ;
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'ManifestReadError';
  }
}

/** Redis could not be reached or refused a command. */
export class StoreUnavailableError extends SwarmkeeperError {
  readonly code = ERROR_CODES.STORE_UNAVAILABLE;
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export class NotFoundError extends SwarmkeeperError {
  readonly code = ERROR_CODES.NOT_FOUND;
  constructor(readonly subject: string) {
    super(`${subject} not found`);
    this.name = 'NotFoundError';
  }
}

/** The environment or command-line configuration is invalid. */
export class ConfigError extends SwarmkeeperError {
  readonly code = ERROR_CODES.CONFIG;
  constructor(
    message: string,
    readonly issues: readonly FieldIssue[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** A command was called with arguments that do not fit it. */
export class UsageError extends SwarmkeeperError {
  readonly code = ERROR_CODES.USAGE;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The codes a {@link DockerRequestError} can carry. */
export type DockerErrorCode =
  | typeof ERROR_CODES.DOCKER_UNAVAILABLE
  | typeof ERROR_CODES.DOCKER_OUT_OF_SEQUENCE
  | typeof ERROR_CODES.DOCKER_IN_USE
  | typeof ERROR_CODES.DOCKER_CONFLICT
  | typeof ERROR_CODES.DOCKER_NOT_FOUND
  | typeof ERROR_CODES.DOCKER_REJECTED
  | typeof ERROR_CODES.DOCKER_ENGINE;

/**
 * Codes after which the same request may succeed later without anyone changing the manifest: the
 * engine comes back, the caller re-reads the version, the services move off a config.
 */
const RETRYABLE_DOCKER_CODES: ReadonlySet<DockerErrorCode> = new Set([
  ERROR_CODES.DOCKER_UNAVAILABLE,
  ERROR_CODES.DOCKER_OUT_OF_SEQUENCE,
  ERROR_CODES.DOCKER_IN_USE,
  ERROR_CODES.DOCKER_ENGINE,
]);

/**
 * A Docker Engine request that failed, sorted by what the caller should do about it. `operation`
 * names what was being done (`remove config skx-conf-1a2b3c4d`); `engineMessage` is the engine's
 * own words when it answered at all.
 */
export class DockerRequestError extends SwarmkeeperError {
  readonly code: DockerErrorCode;
  readonly operation: string;
  readonly statusCode: number | undefined;
  readonly engineMessage: string | undefined;

  constructor(
    code: DockerErrorCode,
    operation: string,
    details: { statusCode?: number; engineMessage?: string; cause?: unknown } = {},
  ) {
    const reason = details.engineMessage ?? DEFAULT_DOCKER_REASONS[code];
    super(`${operation}: ${reason}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DockerRequestError';
    this.code = code;
    this.operation = operation;
    this.statusCode = details.statusCode;
    this.engineMessage = details.engineMessage;
  }

  /** True when retrying later (with backoff, re-reading first) can succeed. */
  get retryable(): boolean {
    return RETRYABLE_DOCKER_CODES.has(this.code);
  }
}

const DEFAULT_DOCKER_REASONS: Readonly<Record<DockerErrorCode, string>> = {
  [ERROR_CODES.DOCKER_UNAVAILABLE]: 'the Docker engine cannot be reached',
  [ERROR_CODES.DOCKER_OUT_OF_SEQUENCE]: 'update out of sequence',
  [ERROR_CODES.DOCKER_IN_USE]: 'still in use',
  [ERROR_CODES.DOCKER_CONFLICT]: 'an object with that name already exists',
  [ERROR_CODES.DOCKER_NOT_FOUND]: 'no such object',
  [ERROR_CODES.DOCKER_REJECTED]: 'rejected by the engine',
  [ERROR_CODES.DOCKER_ENGINE]: 'the engine failed the request',
};

/**
 * Refusal to remove or prune a Docker object that does not carry both `io.swarmkeeper.managed=true`
 * and this deployment's `io.swarmkeeper.owner`: a safety net under the controller's own checks.
 */
export class NotOwnedError extends SwarmkeeperError {
  readonly code = ERROR_CODES.NOT_OWNED;
  constructor(
    readonly subject: string,
    readonly owner: string,
  ) {
    super(`${subject} is not managed by swarmkeeper with owner "${owner}"; refusing to remove it`);
    this.name = 'NotOwnedError';
  }
}

/** Something the actuator waits for on the engine (endpoints draining off a network) did not happen in time. */
export class ActuationTimeoutError extends SwarmkeeperError {
  readonly code = ERROR_CODES.ACTUATION_TIMEOUT;
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
    detail: string,
  ) {
    super(`${operation}: not done after ${timeoutMs} ms (${detail})`);
    this.name = 'ActuationTimeoutError';
  }
}

/**
 * A name that would not land as one entry directly under a HomeFolders root (`..`, `a/b`, NUL,
 * a leading dot, too long). Refused before any filesystem call is made with it.
 */
export class HomeUnsafePathError extends SwarmkeeperError {
  readonly code = ERROR_CODES.HOME_UNSAFE_PATH;
  constructor(
    readonly segment: string,
    readonly reason: string,
  ) {
    super(`refusing home folder path ${JSON.stringify(segment)}: ${reason}`);
    this.name = 'HomeUnsafePathError';
  }
}

/**
 * Something other than what the controller would have made sits at a home folder or e-mail file
 * path (a symlink, a file where a folder belongs). Never followed or touched; a person decides.
 */
export class HomeConflictError extends SwarmkeeperError {
  readonly code = ERROR_CODES.HOME_CONFLICT;
  constructor(
    readonly path: string,
    readonly found: string,
  ) {
    super(`${path}: found ${found}; refusing to follow or change it`);
    this.name = 'HomeConflictError';
  }
}

/**
 * The HomeFolders root is missing or not a directory. Never created by the controller: an
 * unmounted NFS export would otherwise fill the local disk with empty home folders.
 */
export class HomeRootUnavailableError extends SwarmkeeperError {
  readonly code = ERROR_CODES.HOME_ROOT_UNAVAILABLE;
  constructor(
    readonly root: string,
    detail: string,
    options?: { cause: unknown },
  ) {
    super(`home folder root ${root} is unavailable: ${detail}`, options);
    this.name = 'HomeRootUnavailableError';
  }
}

/** An HTTP API request without a valid bearer token. The answer never says what was wrong with it. */
export class UnauthorizedError extends SwarmkeeperError {
  readonly code = ERROR_CODES.UNAUTHORIZED;
  constructor() {
    super('a valid bearer token is required');
    this.name = 'UnauthorizedError';
  }
}

/** A client sent HTTP API requests faster than its rate allows; it may try again after `retryAfterSeconds`. */
export class RateLimitedError extends SwarmkeeperError {
  readonly code = ERROR_CODES.RATE_LIMITED;
  constructor(readonly retryAfterSeconds: number) {
    super(`too many requests; retry after ${retryAfterSeconds} s`);
    this.name = 'RateLimitedError';
  }
}

/** The HTTP statuses an {@link HttpRequestError} answers with. */
export type HttpRequestStatus = 400 | 404 | 405 | 409 | 413 | 415;

/**
 * An HTTP request the API refuses as sent: unknown path (404), wrong method (405, with the
 * methods `allow`ed), body too large (413), wrong media type (415), malformed JSON (400), or a
 * stored record it cannot safely build on (409).
 */
export class HttpRequestError extends SwarmkeeperError {
  readonly code = ERROR_CODES.HTTP_REQUEST;
  constructor(
    readonly status: HttpRequestStatus,
    message: string,
    readonly allow: readonly string[] = [],
  ) {
    super(message);
    this.name = 'HttpRequestError';
  }
}

/**
 * `xfs_quota` could not be run, exited non-zero, was killed, or reported that it touched no folder
 * for a project it was asked to set up. `stderr` is xfs_quota's own words, trimmed and bounded.
 */
export class QuotaCommandError extends SwarmkeeperError {
  readonly code = ERROR_CODES.QUOTA_COMMAND;
  constructor(
    readonly operation: string,
    readonly detail: {
      readonly exitCode?: number | undefined;
      readonly signal?: string | undefined;
      readonly stderr?: string | undefined;
    },
    message: string,
    options?: { cause: unknown },
  ) {
    super(`${operation}: ${message}`, options);
    this.name = 'QuotaCommandError';
  }
}

/** A line of `xfs_quota report` output that is neither a header nor a row the parser knows. */
export class QuotaReportError extends SwarmkeeperError {
  readonly code = ERROR_CODES.QUOTA_REPORT;
  constructor(
    readonly lineNumber: number,
    readonly line: string,
    reason: string,
  ) {
    super(`xfs_quota report line ${lineNumber}: ${reason}: ${JSON.stringify(line.slice(0, 200))}`);
    this.name = 'QuotaReportError';
  }
}

/**
 * A quota entry or project name the quota code refuses before running anything: a path outside
 * the export root or with a line break, an ID outside 1..2^32-2, a negative limit.
 */
export class QuotaEntryError extends SwarmkeeperError {
  readonly code = ERROR_CODES.QUOTA_INVALID_ENTRY;
  constructor(
    readonly subject: string,
    readonly reason: string,
  ) {
    super(`quota entry ${JSON.stringify(subject)}: ${reason}`);
    this.name = 'QuotaEntryError';
  }
}

/** The project-ID counter reached its ceiling: IDs are never reused, so no new project can get one. */
export class ProjectIdsExhaustedError extends SwarmkeeperError {
  readonly code = ERROR_CODES.QUOTA_IDS_EXHAUSTED;
  constructor(
    readonly maxId: number,
    readonly requested: number,
  ) {
    super(`no XFS project IDs left: ${requested} needed, the counter is at its ceiling ${maxId}`);
    this.name = 'ProjectIdsExhaustedError';
  }
}

/** A Docker write refused because this instance no longer leads: another replica may be acting. */
export class NotLeaderError extends SwarmkeeperError {
  readonly code = ERROR_CODES.NOT_LEADER;
  constructor() {
    super('this instance is not the leader; it does not act');
    this.name = 'NotLeaderError';
  }
}

/** The message of anything thrown, for the one place that reports it. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

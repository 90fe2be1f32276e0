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
  USAGE: 'SK_USAGE',
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

/** The message of anything thrown, for the one place that reports it. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

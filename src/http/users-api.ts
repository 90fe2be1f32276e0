/**
 * The users API JupyterHub's pre-spawn hook calls: register a User (`PUT`) and wait until the
 * controller reports its home folder ready (`GET`). Every request needs the bearer token; a request
 * without it is answered before the store is touched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { DesiredStore, HealthState, SyncState } from '../desired/store.js';
import {
  ConfigError,
  HttpRequestError,
  InvalidResourceError,
  NotFoundError,
  UnauthorizedError,
  type FieldIssue,
} from '../errors.js';
import type { Logger } from '../log.js';
import type { Metadata } from '../resources/common.js';
import { userSpec, type UserSpec } from '../resources/kinds/user.js';
import { ANNOTATIONS, API_VERSION } from '../resources/metadata.js';
import { toFieldIssues, validateResource, type ResourceOf } from '../resources/resource.js';
import { readJsonBody, sendJson } from './io.js';

/** What the API needs from the desired store, so tests and callers can see its reach. */
export type UsersStore = Pick<DesiredStore, 'get' | 'apply' | 'readStatus'>;

export interface UsersApiOptions {
  readonly store: UsersStore;
  /** A file holding the bearer token (e.g. a Docker secret); read once at start and trimmed. */
  readonly tokenFile: string;
  /** Largest request body accepted. Default 16 KiB. */
  readonly bodyLimitBytes?: number;
}

export const USERS_PATH_PREFIX = '/api/v1/users/';

const DEFAULT_BODY_LIMIT_BYTES = 16 * 1024;

/**
 * The request body. A field left out keeps the stored value and `null` removes it: the hook sends
 * only what it knows, and must not wipe a quota an administrator set with `swarmkeeper apply`.
 */
const userBody = z.strictObject({
  email: userSpec.shape.email.nullable(),
  quota: userSpec.shape.quota.nullable(),
});

export interface UserView {
  readonly name: string;
  readonly email: string | null;
  readonly quota: string | number | null;
}

export interface UserStatusView extends UserView {
  readonly folder: {
    readonly ready: boolean;
    readonly sync: SyncState | null;
    readonly health: HealthState | null;
    readonly message: string | null;
  };
}

type UserResource = ResourceOf<'User'>;

export class UsersApi {
  private readonly bodyLimitBytes: number;
  /** Only the digest is kept, so the token itself cannot end up in a log line or a heap dump of this object. */
  private tokenDigest: Buffer | undefined;

  constructor(
    private readonly options: UsersApiOptions,
    private readonly log: Logger,
  ) {
    this.bodyLimitBytes = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  }

  /** Reads the token file. Fails, naming the file but never its content, when it is unreadable or empty. */
  async start(): Promise<void> {
    let token: string;
    try {
      token = (await readFile(this.options.tokenFile, 'utf8')).trim();
    } catch (error: unknown) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
      throw new ConfigError(`cannot read the API token file ${this.options.tokenFile}: ${code}`);
    }
    if (token === '') throw new ConfigError(`the API token file ${this.options.tokenFile} is empty`);
    this.tokenDigest = digest(token);
  }

  /** True when `path` (without query) is a users API path this handles. */
  static matches(path: string): boolean {
    return path.startsWith(USERS_PATH_PREFIX);
  }

  /** Handles one request under {@link USERS_PATH_PREFIX}; throws the errors the server turns into answers. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    this.authenticate(req.headers.authorization);
    const segment = path.slice(USERS_PATH_PREFIX.length);
    if (segment === '' || segment.includes('/')) throw new HttpRequestError(404, 'no such endpoint');
    if (req.method !== 'GET' && req.method !== 'PUT') {
      throw new HttpRequestError(405, `${req.method ?? 'this method'} is not allowed here`, ['GET', 'PUT']);
    }
    const name = parseUserName(segment);
    if (req.method === 'GET') {
      sendJson(res, 200, await this.read(name));
      return;
    }
    const body = await readJsonBody(req, res, this.bodyLimitBytes);
    const { view, created } = await this.register(name, body);
    sendJson(res, created ? 201 : 200, view);
  }

  private authenticate(header: string | undefined): void {
    const presented = header === undefined ? undefined : /^Bearer +(\S+) *$/i.exec(header)?.[1];
    // Digests of equal length go to timingSafeEqual, so neither the token nor its length leaks through timing.
    const ok =
      this.tokenDigest !== undefined &&
      presented !== undefined &&
      timingSafeEqual(digest(presented), this.tokenDigest);
    if (!ok) throw new UnauthorizedError();
  }

  private async read(name: string): Promise<UserStatusView> {
    const user = await this.storedUser(name);
    if (user === undefined) throw new NotFoundError(`User ${name}`);
    const status = await this.options.store.readStatus('User', name);
    return {
      ...viewOf(user),
      folder: {
        ready: status?.sync === 'Synced' && status.health === 'Healthy',
        sync: status?.sync ?? null,
        health: status?.health ?? null,
        message: status?.message ?? null,
      },
    };
  }

  private async register(name: string, body: unknown): Promise<{ view: UserView; created: boolean }> {
    const parsed = userBody.safeParse(body);
    if (!parsed.success) throw new InvalidResourceError(`User ${name}`, bodyIssues(parsed.error));
    // The store offers no compare-and-set, so an `apply` of this same User between this read and
    // the write below loses its labels or homeFolders. The window is one Redis round trip.
    const previous = await this.storedUser(name);
    const validation = validateResource({
      apiVersion: API_VERSION,
      kind: 'User',
      metadata: mergedMetadata(name, previous?.metadata),
      spec: mergedSpec(previous?.spec ?? {}, parsed.data),
    });
    if (!validation.ok) throw new InvalidResourceError(`User ${name}`, validation.issues);
    const [result] = await this.options.store.apply([validation.resource]);
    const action = result?.action ?? 'unchanged';
    if (action !== 'unchanged') this.log.info({ user: name, action }, 'user registered through the API');
    return { view: viewOf(validation.resource as UserResource), created: action === 'created' };
  }

  /** The stored User, undefined when there is none; a stored record that fails validation is a 409. */
  private async storedUser(name: string): Promise<UserResource | undefined> {
    const record = await this.options.store.get('User', name);
    if (record === undefined) return undefined;
    if (!record.ok || record.resource.kind !== 'User') {
      throw new HttpRequestError(
        409,
        `the stored record of User ${name} is invalid; \`swarmkeeper get User ${name}\` shows why`,
      );
    }
    return record.resource;
  }
}

/** zod reports unknown keys as one issue at the root; the client wants each field named. */
function bodyIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' && issue.path.length === 0
      ? issue.keys.map((key) => ({ path: key, message: 'is not a field the users API accepts' }))
      : toFieldIssues(new z.ZodError([issue])),
  );
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Decodes the name from the path once and checks it with the User name rule, so `..%2F`,
 * `%2e%2e` and `%00` are refused after decoding rather than slipping past a check of the raw path.
 */
function parseUserName(segment: string): string {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    throw invalidName([{ path: 'name', message: 'is not valid percent-encoding' }]);
  }
  const validation = validateResource({
    apiVersion: API_VERSION,
    kind: 'User',
    metadata: { name },
    spec: {},
  });
  if (!validation.ok) {
    throw invalidName(
      validation.issues.map((issue) => ({
        path: issue.path.replace(/^metadata\.name/, 'name'),
        message: issue.message,
      })),
    );
  }
  return name;
}

function invalidName(issues: FieldIssue[]): InvalidResourceError {
  return new InvalidResourceError('the User name in the path', issues);
}

/**
 * Keeps what people set with `swarmkeeper apply` (labels, annotations). The one exception is
 * `swarmkeeper/discovered`: it says nobody registered the User, which this request just did.
 */
function mergedMetadata(name: string, previous: Metadata | undefined): Metadata {
  const { [ANNOTATIONS.discovered]: _discovered, ...annotations } = previous?.annotations ?? {};
  return {
    name,
    ...(previous?.labels !== undefined && { labels: previous.labels }),
    ...(Object.keys(annotations).length > 0 && { annotations }),
  };
}

/** The body's fields over the stored spec: absent keeps, `null` removes; everything else (homeFolders) stays. */
function mergedSpec(previous: UserSpec, body: z.infer<typeof userBody>): UserSpec {
  const { email: storedEmail, quota: storedQuota, ...kept } = previous;
  const email = body.email === undefined ? storedEmail : (body.email ?? undefined);
  const quota = body.quota === undefined ? storedQuota : (body.quota ?? undefined);
  return { ...kept, ...(email !== undefined && { email }), ...(quota !== undefined && { quota }) };
}

function viewOf(user: UserResource): UserView {
  return { name: user.metadata.name, email: user.spec.email ?? null, quota: user.spec.quota ?? null };
}

/**
 * Builds the ioredis client. The CLI fails fast so a command never hangs on a Redis that is not
 * there; the controller retries forever, because Redis coming back is its normal recovery path.
 */
import { readFile } from 'node:fs/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, StoreUnavailableError, describeError } from '../errors.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Longest pause between the controller's reconnection attempts. */
export const MAX_RECONNECT_DELAY_MS = 5_000;

const DEFAULT_CLI_CONNECT_TIMEOUT_MS = 3_000;
const DEFAULT_CONTROLLER_CONNECT_TIMEOUT_MS = 10_000;

export type RedisMode = 'cli' | 'controller';

export interface RedisConnectionOptions {
  /** `redis://` or `rediss://` (TLS), with optional user, host, port and `/db`. Default {@link DEFAULT_REDIS_URL}. */
  readonly url?: string;
  /** A file holding the password, e.g. a Docker secret; its trailing newline is ignored. Overrides a URL password. */
  readonly passwordFile?: string;
  /** `cli`: one attempt, fail fast. `controller`: reconnect forever, commands wait for the connection. */
  readonly mode: RedisMode;
  readonly connectTimeoutMs?: number;
  /** Shown by `CLIENT LIST`, to tell swarmkeeper's connections apart. */
  readonly connectionName?: string;
  /**
   * Connection problems after start (the controller keeps retrying through them). Without it they
   * are dropped, so ioredis does not print them itself.
   */
  readonly onError?: (error: StoreUnavailableError) => void;
  /**
   * Redis Sentinel: ask these sentinels for the master named `sentinelName` instead of connecting
   * to the URL's host. The URL still supplies credentials, TLS and the database.
   */
  readonly sentinels?: readonly { readonly host: string; readonly port: number }[];
  readonly sentinelName?: string;
}

/**
 * A connected client for `cli` (or a StoreUnavailableError when Redis cannot be reached), or a
 * client that is connecting in the background for `controller`.
 */
export async function createRedis(options: RedisConnectionOptions): Promise<Redis> {
  const url = options.url ?? DEFAULT_REDIS_URL;
  const password = options.passwordFile === undefined ? undefined : await readPassword(options.passwordFile);
  // Credentials travel in the options only: ioredis lets a URL's (even empty) password win over them.
  const settings = redisOptions(options, url, password);
  const sentinels = options.sentinels ?? [];
  const redis =
    sentinels.length > 0
      ? new Redis({
          ...settings,
          sentinels: sentinels.map((s) => ({ host: s.host, port: s.port })),
          name: options.sentinelName ?? 'mymaster',
          db: Number(parseRedisUrl(url).pathname.slice(1) || 0),
        })
      : new Redis(withoutCredentials(url), settings);
  const where =
    sentinels.length > 0
      ? `sentinel master ${options.sentinelName ?? 'mymaster'} via ${sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`
      : redactRedisUrl(url);
  // The CLI's connect() rejects with only "Connection is closed."; the reason (WRONGPASS, a
  // certificate the server presented that is not trusted, a refused connection) came as an event.
  let lastError: unknown;
  redis.on('error', (error: unknown) => {
    lastError = error;
    options.onError?.(
      new StoreUnavailableError(`Redis at ${where}: ${describeError(error)}`, { cause: error }),
    );
  });
  if (options.mode === 'controller') return redis;
  try {
    await redis.connect();
    return redis;
  } catch (error: unknown) {
    redis.disconnect();
    const cause = lastError ?? error;
    throw new StoreUnavailableError(`cannot reach Redis at ${where}: ${describeError(cause)}`, { cause });
  }
}

/**
 * The ioredis options for a mode, credentials included (a password from the file beats one in the
 * URL); exported so the policy can be checked without a server.
 */
export function redisOptions(
  options: RedisConnectionOptions,
  url: string,
  password: string | undefined,
): RedisOptions {
  const parsed = parseRedisUrl(url);
  const username = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
  const secret = password ?? (parsed.password === '' ? undefined : decodeURIComponent(parsed.password));
  const common: RedisOptions = {
    ...(username !== undefined && { username }),
    ...(secret !== undefined && { password: secret }),
    ...(parsed.protocol === 'rediss:' && { tls: { servername: parsed.hostname } }),
    ...(options.connectionName !== undefined && { connectionName: options.connectionName }),
  };
  if (options.mode === 'cli') {
    return {
      ...common,
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? DEFAULT_CLI_CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    };
  }
  return {
    ...common,
    lazyConnect: false,
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONTROLLER_CONNECT_TIMEOUT_MS,
    // Commands wait for the connection instead of failing after a few retries.
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: reconnectDelayMs,
  };
}

/** Exponential backoff from 100 ms, capped at {@link MAX_RECONNECT_DELAY_MS}; never gives up. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.max(0, Math.min(attempt - 1, 16)), MAX_RECONNECT_DELAY_MS);
}

/** The URL with any password replaced, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = 'redacted';
    return parsed.toString();
  } catch {
    return '<unparsable Redis URL>';
  }
}

function withoutCredentials(url: string): string {
  const parsed = parseRedisUrl(url);
  parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

function parseRedisUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`invalid Redis URL ${redactRedisUrl(url)}`, [
      { path: 'REDIS_URL', message: 'is not a URL' },
    ]);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`invalid Redis URL ${redactRedisUrl(url)}`, [
      { path: 'REDIS_URL', message: 'must start with redis:// or rediss://' },
    ]);
  }
  return parsed;
}

async function readPassword(file: string): Promise<string> {
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (error: unknown) {
    throw new ConfigError(`cannot read REDIS_PASSWORD_FILE ${file}: ${describeError(error)}`, [
      { path: 'REDIS_PASSWORD_FILE', message: 'cannot be read' },
    ]);
  }
  return content.replace(/\r?\n$/, '');
}

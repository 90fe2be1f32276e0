/**
 * swarmkeeper's HTTP endpoint on bare node:http: liveness and readiness probes and Prometheus
 * metrics (no token; nothing secret in them), and, when configured, the users API behind a
 * bearer token and a per-client rate limit, and the status page (dashboard/) behind the same token.
 *
 * Every request is logged once, when its answer is written: served requests at debug, refused
 * ones at info (401 at warn, 429 at debug), failures at error. Answers carry an error code and a
 * message written for clients, never a stack trace or a secret.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConfigError,
  HttpRequestError,
  InvalidResourceError,
  NotFoundError,
  RateLimitedError,
  StoreUnavailableError,
  SwarmkeeperError,
  UnauthorizedError,
  describeError,
} from '../errors.js';
import type { Logger } from '../log.js';
import { Dashboard } from './dashboard/index.js';
import { send, sendJson } from './io.js';
import type { Metrics } from './metrics.js';
import { TokenBucketLimiter, type RateLimitOptions } from './rate-limit.js';
import { UsersApi, type UsersApiOptions } from './users-api.js';

/** What the readiness probe reports; a follower that is otherwise ready is ready. */
export interface Readiness {
  readonly redis: boolean;
  readonly docker: boolean;
  /** The first full sync after start has finished. */
  readonly synced: boolean;
  readonly leader: boolean;
}

export type ReadinessProbe = () => Promise<Readiness> | Readiness;

export interface HttpServerOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly readiness: ReadinessProbe;
  /** A readiness check slower than this answers 503, so a hung dependency cannot hang the probe. Default 2000. */
  readonly readinessTimeoutMs?: number;
  /** Without it, `/api/...` answers 404. */
  readonly users?: UsersApiOptions;
  /** Without it, `/` and the status page's paths answer 404. The server starts and closes it. */
  readonly dashboard?: Dashboard;
  /**
   * Per remote address, for the users API and the status page: probes and scrapes come from
   * trusted infrastructure.
   */
  readonly rateLimit?: RateLimitOptions;
}

export interface ListeningAddress {
  readonly host: string;
  readonly port: number;
}

export interface HttpServer {
  /** `host:port` (`[::1]:9464` for IPv6; port 0 picks a free one). Reads the token file first. */
  listen(address: string): Promise<ListeningAddress>;
  /** Stops accepting connections, lets requests in flight finish and drops idle keep-alive connections. */
  close(): Promise<void>;
}

/** How a refusal or failure is logged: a flood of 429s must not turn into a flood of log lines. */
type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Slow or stalled clients may hold a connection this long, at most. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

const PROBE_METHODS = ['GET', 'HEAD'];

export function createHttpServer(options: HttpServerOptions): HttpServer {
  const { log, metrics } = options;
  const users = options.users ? new UsersApi(options.users, log) : undefined;
  const limiter = new TokenBucketLimiter(options.rateLimit);
  const readinessTimeoutMs = options.readinessTimeoutMs ?? 2_000;

  const routes: Readonly<Record<string, Route>> = {
    '/healthz': (res) => {
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return Promise.resolve();
    },
    '/readyz': async (res, note) => {
      let readiness: Readiness;
      try {
        readiness = await withTimeout(Promise.resolve().then(options.readiness), readinessTimeoutMs);
      } catch (error: unknown) {
        note({ error: describeError(error) });
        sendJson(res, 503, { ready: false, notReady: ['check'], error: 'the readiness check failed' });
        return;
      }
      const notReady = (['redis', 'docker', 'synced'] as const).filter((check) => !readiness[check]);
      const body = {
        ready: notReady.length === 0,
        notReady,
        checks: {
          redis: readiness.redis,
          docker: readiness.docker,
          synced: readiness.synced,
          leader: readiness.leader,
        },
      };
      sendJson(res, notReady.length === 0 ? 200 : 503, body);
    },
    '/metrics': async (res) => {
      send(res, 200, metrics.contentType, await metrics.text());
    },
  };

  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    note: (failure: Failure) => void,
  ): Promise<void> => {
    const route = routes[path];
    if (route !== undefined && Object.hasOwn(routes, path)) {
      if (!PROBE_METHODS.includes(req.method ?? '')) {
        throw new HttpRequestError(405, `${req.method ?? 'this method'} is not allowed here`, PROBE_METHODS);
      }
      await route(res, note);
      return;
    }
    const { dashboard } = options;
    if (dashboard !== undefined && Dashboard.matches(path)) {
      if (!Dashboard.isAsset(path)) {
        const decision = limiter.take(req.socket.remoteAddress ?? 'unknown');
        if (!decision.ok) throw new RateLimitedError(decision.retryAfterSeconds);
      }
      await dashboard.handle(req, res, path, note);
      return;
    }
    if (users !== undefined && UsersApi.matches(path)) {
      const decision = limiter.take(req.socket.remoteAddress ?? 'unknown');
      if (!decision.ok) throw new RateLimitedError(decision.retryAfterSeconds);
      await users.handle(req, res, path);
      return;
    }
    throw new HttpRequestError(404, 'no such endpoint');
  };

  const server: Server = createServer((req, res) => {
    const startedAt = performance.now();
    const path = pathOf(req.url);
    let failure: Failure | undefined;
    const note = (f: Failure): void => {
      failure = f;
    };
    res.on('finish', () => {
      const fields = {
        method: req.method,
        // The route, not the raw URL: a query string is no place for a token, but people try.
        path: routeLabel(path),
        status: res.statusCode,
        remote: req.socket.remoteAddress,
        ms: Math.round(performance.now() - startedAt),
        ...failure,
      };
      // An answer the handler chose (200, or 503 from /readyz) is routine; only failures stand out.
      if (failure === undefined) log.debug(fields, 'http request served');
      else log[levelOf(res.statusCode)](fields, messageOf(res.statusCode));
    });
    handle(req, res, path, note).catch((error: unknown) => {
      const answer = answerFor(error);
      failure = {
        ...(answer.body.code !== undefined && { code: answer.body.code }),
        ...(answer.status >= 500 && { error: describeError(error) }),
      };
      if (res.headersSent) {
        // Too late for an error answer; 'finish' will not come, so this is the one log line.
        log.error({ method: req.method, path: routeLabel(path), ...failure }, 'http response aborted');
        res.destroy();
        return;
      }
      sendJson(res, answer.status, { error: answer.body }, answer.headers);
    });
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;

  return {
    async listen(address: string): Promise<ListeningAddress> {
      const { host, port } = parseListenAddress(address);
      await users?.start();
      await options.dashboard?.start();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const bound = server.address() as AddressInfo;
      log.info(
        { host: bound.address, port: bound.port, usersApi: users !== undefined },
        'http server listening',
      );
      return { host: bound.address, port: bound.port };
    },

    async close(): Promise<void> {
      // Event streams never end by themselves, and the server waits for every open request.
      await options.dashboard?.close();
      if (!server.listening) return;
      return new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      });
    },
  };
}

type Failure = { readonly code?: string; readonly error?: string };

type Route = (res: ServerResponse, note: (failure: Failure) => void) => Promise<void>;

interface Answer {
  readonly status: number;
  readonly body: {
    /** Absent only for a failure that is not a {@link SwarmkeeperError}: a bug, with no catalogued code. */
    readonly code?: string;
    readonly message: string;
    readonly fields?: readonly { path: string; message: string }[];
  };
  readonly headers: Readonly<Record<string, string>>;
}

/** Maps what a handler threw to an answer. Only messages written for clients are passed on. */
function answerFor(error: unknown): Answer {
  const answer = (status: number, code: string, message: string, headers: Record<string, string> = {}) => ({
    status,
    body: { code, message },
    headers,
  });
  if (error instanceof InvalidResourceError) {
    return {
      ...answer(400, error.code, error.message),
      body: {
        code: error.code,
        message: error.message,
        fields: error.issues.map(({ path, message }) => ({ path, message })),
      },
    };
  }
  if (error instanceof HttpRequestError) {
    return answer(
      error.status,
      error.code,
      error.message,
      error.allow.length > 0 ? { allow: error.allow.join(', ') } : {},
    );
  }
  if (error instanceof UnauthorizedError) {
    return answer(401, error.code, error.message, { 'www-authenticate': 'Bearer realm="swarmkeeper"' });
  }
  if (error instanceof RateLimitedError) {
    return answer(429, error.code, error.message, { 'retry-after': String(error.retryAfterSeconds) });
  }
  if (error instanceof NotFoundError) return answer(404, error.code, error.message);
  if (error instanceof StoreUnavailableError) {
    // The underlying message names hosts and commands: useful in the log, not to a client.
    return answer(503, error.code, 'the desired-state store is unavailable; try again', {
      'retry-after': '1',
    });
  }
  const message = 'internal error; the swarmkeeper log has the details';
  if (error instanceof SwarmkeeperError) return answer(500, error.code, message);
  return { status: 500, body: { message }, headers: {} };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The path without the query, undecoded: the users API decodes its one segment itself. */
function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const end = raw.search(/[?#]/);
  return end === -1 ? raw : raw.slice(0, end);
}

function routeLabel(path: string): string {
  if (path === '/healthz' || path === '/readyz' || path === '/metrics') return path;
  if (UsersApi.matches(path)) return '/api/v1/users/{name}';
  if (Dashboard.matches(path)) return path;
  return 'unknown';
}

function levelOf(status: number): LogLevel {
  if (status >= 500) return 'error';
  if (status === 401) return 'warn';
  if (status === 429) return 'debug';
  return 'info';
}

function messageOf(status: number): string {
  return status >= 500 ? 'http request failed' : 'http request refused';
}

/** `host:port`, with IPv6 hosts in brackets. */
export function parseListenAddress(address: string): ListeningAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65_535) {
    throw new ConfigError(`listen address "${address}" must be host:port, e.g. 0.0.0.0:9464 or [::]:9464`);
  }
  return { host, port };
}

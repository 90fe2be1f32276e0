/**
 * The live status page: `/` (HTML), `/status.json` (what it shows, for the page's script and for
 * people's own scripts), `/events/stream` (the timeline, server-sent events) and two static
 * assets. Read-only: nothing here writes to the store or to Docker. Who may look: auth.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventStream } from '../../desired/events.js';
import {
  ERROR_CODES,
  HttpRequestError,
  StoreUnavailableError,
  UnauthorizedError,
  describeError,
} from '../../errors.js';
import type { Logger } from '../../log.js';
import { send, sendJson } from '../io.js';
import { ASSET_PATHS, DASHBOARD_CSS, DASHBOARD_JS } from './assets.js';
import { DashboardAuth, overHttps, type DashboardAuthOptions } from './auth.js';
import { renderLogin, renderPage, renderUnavailable } from './page.js';
import { SnapshotSource, type SnapshotSources } from './snapshot.js';
import { TimelineStreams, type TimelineOptions } from './timeline.js';

export interface DashboardOptions {
  readonly log: Logger;
  readonly auth: DashboardAuthOptions;
  readonly snapshot: SnapshotSources;
  /** Owned: closed with the dashboard. */
  readonly events: Pick<EventStream, 'range' | 'lastId' | 'follow' | 'close'>;
  /** Backlog size, heartbeat and stream limit of `/events/stream`. */
  readonly timeline?: Omit<TimelineOptions, 'reader' | 'log'>;
}

type Note = (failure: { readonly code?: string; readonly error?: string }) => void;

const PAGE = '/';
const STATUS = '/status.json';
const STREAM = '/events/stream';
const CSS = '/assets/dashboard.css';
const JS = '/assets/dashboard.js';
const PATHS: readonly string[] = [PAGE, STATUS, STREAM, CSS, JS];
const METHODS = ['GET', 'HEAD'];

/**
 * What a browser may do with the page: load its own script and styles and call its own origin,
 * nothing inline, nothing framed, no Referer carrying anything anywhere.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

const ASSET_HEADERS = { 'cache-control': 'public, max-age=86400' } as const;

export class Dashboard {
  private readonly auth: DashboardAuth;
  private readonly snapshots: SnapshotSource;
  private readonly streams: TimelineStreams;

  constructor(private readonly options: DashboardOptions) {
    this.auth = new DashboardAuth(options.auth);
    this.snapshots = new SnapshotSource(options.snapshot);
    this.streams = new TimelineStreams({ ...options.timeline, reader: options.events, log: options.log });
  }

  /** True for the paths this serves (without query). */
  static matches(path: string): boolean {
    return PATHS.includes(path);
  }

  /** The static assets carry nothing worth guessing at: no token, no rate limit. */
  static isAsset(path: string): boolean {
    return path === CSS || path === JS;
  }

  /** Reads the token file (unless public). */
  async start(): Promise<void> {
    await this.auth.start();
  }

  /** Serves one request to a path {@link matches} accepted; throws what the server turns into answers. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, note: Note): Promise<void> {
    if (!METHODS.includes(req.method ?? '')) {
      throw new HttpRequestError(405, `${req.method ?? 'this method'} is not allowed here`, METHODS);
    }
    switch (path) {
      case CSS:
        send(res, 200, 'text/css; charset=utf-8', DASHBOARD_CSS, ASSET_HEADERS);
        return;
      case JS:
        send(res, 200, 'text/javascript; charset=utf-8', DASHBOARD_JS, ASSET_HEADERS);
        return;
      case PAGE:
        await this.page(req, res, note);
        return;
      case STATUS:
        if (!this.auth.allows(req)) throw new UnauthorizedError();
        sendJson(res, 200, await this.snapshots.get(), { 'referrer-policy': 'no-referrer' });
        return;
      case STREAM:
        // A HEAD would hold a Redis follow open for an answer without a body.
        if (req.method !== 'GET') throw new HttpRequestError(405, 'only GET streams events', ['GET']);
        if (!this.auth.allows(req)) throw new UnauthorizedError();
        await this.streams.handle(req, res);
        return;
      default:
        throw new HttpRequestError(404, 'no such endpoint');
    }
  }

  /** Ends the open event streams (a server cannot close while they last) and the reader's connections. */
  async close(): Promise<void> {
    await this.streams.close();
    await this.options.events.close();
  }

  private async page(req: IncomingMessage, res: ServerResponse, note: Note): Promise<void> {
    const token = new URL(req.url ?? '/', 'http://localhost').searchParams.get('token');
    if (token !== null) {
      // The token never stays in the address bar, the history or a Referer: answer with a redirect.
      if (this.auth.public || this.auth.tokenMatches(token)) {
        const cookie = this.auth.public ? {} : { 'set-cookie': this.auth.sessionCookie(overHttps(req)) };
        send(res, 303, 'text/plain; charset=utf-8', 'see /\n', {
          ...PAGE_HEADERS,
          ...cookie,
          location: PAGE,
        });
        return;
      }
      this.refuse(res, note, true);
      return;
    }
    if (!this.auth.allows(req)) {
      this.refuse(res, note, false);
      return;
    }
    let html: string;
    try {
      html = renderPage(await this.snapshots.get(), ASSET_PATHS);
    } catch (error: unknown) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      note({ code: error.code, error: describeError(error) });
      send(res, 503, 'text/html; charset=utf-8', renderUnavailable(ASSET_PATHS), {
        ...PAGE_HEADERS,
        'retry-after': '5',
      });
      return;
    }
    send(res, 200, 'text/html; charset=utf-8', html, PAGE_HEADERS);
  }

  /** 401 as a page a person can use; logged like every refused request, with the code. */
  private refuse(res: ServerResponse, note: Note, rejected: boolean): void {
    note({ code: ERROR_CODES.UNAUTHORIZED });
    send(res, 401, 'text/html; charset=utf-8', renderLogin(ASSET_PATHS, rejected), {
      ...PAGE_HEADERS,
      'www-authenticate': 'Bearer realm="swarmkeeper"',
    });
  }
}

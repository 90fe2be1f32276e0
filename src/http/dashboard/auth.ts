/**
 * Who may see the status page. It shows no secret, but it does show the deployment's layout, so it
 * sits behind the users API's token unless SWARMKEEPER_DASHBOARD_PUBLIC=true.
 *
 * A browser cannot send a bearer header when it navigates, so the token is accepted once as
 * `/?token=...`; the answer is a redirect to `/` (the token leaves the address bar and history)
 * that sets a session cookie. The cookie is not the token: it is `v1.<expiry>.<HMAC>`, signed with
 * a key derived from the token, so it
 *  - cannot be turned back into the token, and opens the page only, never the users API;
 *  - is valid on every replica and across restarts (no server-side session), and until its expiry;
 *  - stops working when the token is rotated.
 * It is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it) and Secure
 * when the request came over HTTPS. Scripts may send `Authorization: Bearer` instead.
 * Every comparison runs on SHA-256 digests of equal length in constant time.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { ConfigError } from '../../errors.js';

export const SESSION_COOKIE = 'swarmkeeper_dashboard';

/** How long a session cookie opens the page; then the token is needed again. */
export const SESSION_SECONDS = 12 * 60 * 60;

const COOKIE_VERSION = 'v1';
/** Separates this use of the token from any other HMAC keyed with it. */
const KEY_LABEL = 'swarmkeeper dashboard session';

export interface DashboardAuthOptions {
  /** Where the token is: the users API's token file. Required unless `public`. */
  readonly tokenFile?: string;
  /** SWARMKEEPER_DASHBOARD_PUBLIC=true: no token asked. */
  readonly public: boolean;
  /** Seconds since the epoch; tests pass their own. */
  readonly now?: () => number;
}

export class DashboardAuth {
  readonly public: boolean;
  private readonly now: () => number;
  /** Only derived values are kept, never the token itself. */
  private tokenDigest: Buffer | undefined;
  private sessionKey: Buffer | undefined;

  constructor(private readonly options: DashboardAuthOptions) {
    this.public = options.public;
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
    if (!options.public && options.tokenFile === undefined) {
      throw new ConfigError(
        'the status page needs SWARMKEEPER_API_TOKEN_FILE or SWARMKEEPER_DASHBOARD_PUBLIC',
      );
    }
  }

  /** Reads the token file; a public page needs none. Fails naming the file, never its content. */
  async start(): Promise<void> {
    const file = this.options.tokenFile;
    if (this.public || file === undefined) return;
    let token: string;
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch (error: unknown) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
      throw new ConfigError(`cannot read the API token file ${file}: ${code}`);
    }
    if (token === '') throw new ConfigError(`the API token file ${file} is empty`);
    this.tokenDigest = sha256(token);
    this.sessionKey = createHmac('sha256', token).update(KEY_LABEL).digest();
  }

  /** True when the page may be shown: it is public, or the request has a valid session cookie or bearer token. */
  allows(req: IncomingMessage): boolean {
    if (this.public) return true;
    const bearer = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && this.tokenMatches(bearer)) return true;
    const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
    return cookie !== undefined && this.sessionValid(cookie);
  }

  /** Whether `presented` is the token; constant time whatever its length. */
  tokenMatches(presented: string): boolean {
    return this.tokenDigest !== undefined && timingSafeEqual(sha256(presented), this.tokenDigest);
  }

  /** A `Set-Cookie` value opening a new session. */
  sessionCookie(secure: boolean): string {
    const expires = this.now() + SESSION_SECONDS;
    const value = `${COOKIE_VERSION}.${expires}.${this.sign(`${COOKIE_VERSION}.${expires}`)}`;
    return [
      `${SESSION_COOKIE}=${value}`,
      'Path=/',
      `Max-Age=${SESSION_SECONDS}`,
      'HttpOnly',
      'SameSite=Strict',
      ...(secure ? ['Secure'] : []),
    ].join('; ');
  }

  private sessionValid(value: string): boolean {
    const match = /^(v1)\.(\d{1,12})\.([A-Za-z0-9_-]{1,100})$/.exec(value);
    if (match === null || this.sessionKey === undefined) return false;
    const [, version = '', expires = '', mac = ''] = match;
    const expected = this.sign(`${version}.${expires}`);
    const macOk = timingSafeEqual(sha256(mac), sha256(expected));
    return macOk && Number(expires) > this.now();
  }

  private sign(payload: string): string {
    if (this.sessionKey === undefined) throw new Error('DashboardAuth: start() first');
    return createHmac('sha256', this.sessionKey).update(payload).digest('base64url');
  }
}

/** Whether the browser reached us over HTTPS, directly or through a TLS-terminating proxy. */
export function overHttps(req: IncomingMessage): boolean {
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
  const forwarded = req.headers['x-forwarded-proto'];
  const proto = Array.isArray(forwarded) ? forwarded[0] : forwarded;
  return encrypted || proto?.split(',')[0]?.trim().toLowerCase() === 'https';
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const separator = part.indexOf('=');
    if (separator > 0 && part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
  }
  return undefined;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

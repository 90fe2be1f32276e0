/**
 * The events stream: every drift the controller found and every action it took, as a capped Redis
 * STREAM at `<prefix>:events` (the last ~10,000 entries, `XADD MAXLEN ~`). The controller appends
 * through the log sink (src/controller/event-sink.ts); `swarmkeeper events` and the dashboard read.
 *
 * An entry is a flat hash of strings. Its field names are a contract with every reader, so they
 * are spelled once, here: `ts`, `level`, `msg`, `kind`, `name`, and when present `verb`, `action`
 * (JSON array), `drift` (JSON array of `{path, desired, actual}`), `durationMs` and `message`.
 * Nothing else is ever written, so no log field can carry a secret into the stream.
 */
import type { Redis } from 'ioredis';
import { sentinelsOf, type Config } from '../config.js';
import { StoreUnavailableError, describeError } from '../errors.js';
import { KeySpace } from './keys.js';
import { createRedis, type RedisMode } from './redis-connection.js';
import type { DriftEntry } from './store.js';

/** Entries kept: XADD trims to about this many (`~` lets Redis trim whole nodes, cheaply). */
export const EVENTS_MAX_LENGTH = 10_000;

/** The only fields an entry may carry, in the order they are written. */
export const EVENT_FIELDS = [
  'ts',
  'level',
  'msg',
  'kind',
  'name',
  'verb',
  'action',
  'drift',
  'durationMs',
  'message',
] as const;

export type EventLevel = 'info' | 'warn' | 'error';

/** One drift, action, warning or error about one resource. */
export interface EventEntry {
  /** When it was logged, ISO 8601. */
  readonly ts: string;
  readonly level: EventLevel;
  /** The log line's fixed message: `drift detected`, `updated`, `quota set`, `reconcile failed`, ... */
  readonly msg: string;
  readonly kind: string;
  readonly name: string;
  /** What an action did: `created`, `updated`, `recreated`, `removed`, ... */
  readonly verb?: string;
  /** The actions a drift led to: `["update"]`, `["create"]`, `["setQuota"]`. */
  readonly action?: readonly string[];
  readonly drift?: readonly DriftEntry[];
  readonly durationMs?: number;
  /** Why a warning or an error happened. */
  readonly message?: string;
}

/** An entry as read back, with its stream ID (`<ms>-<seq>`), by which `follow` resumes. */
export interface StoredEvent extends EventEntry {
  readonly id: string;
}

export interface EventQuery {
  /** At most this many entries, the newest ones. */
  readonly count: number;
  readonly kind?: string;
  readonly name?: string;
  /** Read back from this ID (inclusive) rather than from the newest: `lastId()` then `follow` leaves no gap. */
  readonly upTo?: string;
}

/** Where events go and come from. */
export interface EventStream {
  /** Appends in order; rejects (with StoreUnavailableError) when the store cannot take them. */
  append(entries: readonly EventEntry[]): Promise<void>;
  /** The newest `count` entries matching the filter, oldest first. */
  range(query: EventQuery): Promise<StoredEvent[]>;
  /** The ID of the newest entry, or undefined when the stream is empty. */
  lastId(): Promise<string | undefined>;
  /**
   * Entries added after `fromId` (`$`: from now on), as they arrive, until `signal` aborts.
   * Blocks on a connection of its own, so appends and reads elsewhere are not held up.
   */
  follow(fromId: string, signal: AbortSignal): AsyncIterable<StoredEvent>;
  close(): Promise<void>;
}

export interface RedisEventStreamOptions {
  readonly redis: Redis;
  readonly keys: KeySpace;
  /** The connection `follow` blocks on; default `redis.duplicate()`. Each follow gets its own and closes it. */
  readonly blockingFactory?: () => Redis;
  /** Whether `close()` quits `redis`; default true. */
  readonly ownsRedis?: boolean;
  /** Default {@link EVENTS_MAX_LENGTH}. */
  readonly maxLength?: number;
}

/** XADDs per pipeline: one round trip each, small enough not to hold Redis up. */
const APPEND_BATCH = 200;
/** XREVRANGE page while filtering: a filter may have to look through the whole (capped) stream. */
const RANGE_PAGE = 1_000;
/** How long one XREAD blocks; `follow` loops, so this only bounds how late an abort is noticed. */
const FOLLOW_BLOCK_MS = 5_000;
const FOLLOW_COUNT = 100;
const CLOSE_TIMEOUT_MS = 2_000;

export class RedisEventStream implements EventStream {
  private readonly redis: Redis;
  private readonly key: string;
  private readonly blockingFactory: () => Redis;
  private readonly ownsRedis: boolean;
  private readonly maxLength: number;
  private readonly blocking = new Set<Redis>();

  constructor(options: RedisEventStreamOptions) {
    this.redis = options.redis;
    this.key = options.keys.events;
    this.blockingFactory = options.blockingFactory ?? (() => options.redis.duplicate());
    this.ownsRedis = options.ownsRedis ?? true;
    this.maxLength = options.maxLength ?? EVENTS_MAX_LENGTH;
  }

  /** Whether the connection is up now; the sink only sends while it is, and buffers otherwise. */
  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  async append(entries: readonly EventEntry[]): Promise<void> {
    for (let start = 0; start < entries.length; start += APPEND_BATCH) {
      const pipeline = this.redis.pipeline();
      for (const entry of entries.slice(start, start + APPEND_BATCH)) {
        pipeline.xadd(this.key, 'MAXLEN', '~', this.maxLength, '*', ...encodeEvent(entry));
      }
      let replies: [Error | null, unknown][] | null;
      try {
        replies = await pipeline.exec();
      } catch (error: unknown) {
        throw new StoreUnavailableError(`append events: ${describeError(error)}`, { cause: error });
      }
      const failed = (replies ?? []).find(([error]) => error !== null)?.[0];
      if (failed) throw new StoreUnavailableError(`append events: ${failed.message}`, { cause: failed });
    }
  }

  async range(query: EventQuery): Promise<StoredEvent[]> {
    const count = Math.max(0, Math.floor(query.count));
    if (count === 0) return [];
    const filtered = query.kind !== undefined || query.name !== undefined;
    const found: StoredEvent[] = [];
    let end = query.upTo ?? '+';
    try {
      for (;;) {
        const page = await this.redis.xrevrange(this.key, end, '-', 'COUNT', filtered ? RANGE_PAGE : count);
        for (const [id, fields] of page) {
          const event = decodeEvent(id, fields);
          if (event && matches(event, query)) found.push(event);
          if (found.length >= count) break;
        }
        const last = page[page.length - 1];
        if (found.length >= count || !filtered || last === undefined || page.length < RANGE_PAGE) break;
        const before = previousId(last[0]);
        if (before === undefined) break;
        end = before;
      }
    } catch (error: unknown) {
      throw new StoreUnavailableError(`read events: ${describeError(error)}`, { cause: error });
    }
    return found.reverse();
  }

  async lastId(): Promise<string | undefined> {
    try {
      const [newest] = await this.redis.xrevrange(this.key, '+', '-', 'COUNT', 1);
      return newest?.[0];
    } catch (error: unknown) {
      throw new StoreUnavailableError(`read events: ${describeError(error)}`, { cause: error });
    }
  }

  async *follow(fromId: string, signal: AbortSignal): AsyncGenerator<StoredEvent> {
    if (signal.aborted) return;
    const connection = this.blockingFactory();
    this.blocking.add(connection);
    // Errors surface through the XREAD that fails; the listener only stops ioredis printing them.
    connection.on('error', () => undefined);
    // Closing the connection is the only way to end an XREAD BLOCK early.
    const stop = (): void => connection.disconnect();
    signal.addEventListener('abort', stop, { once: true });
    let cursor = fromId;
    try {
      // A lazily connecting client with the offline queue off (the CLI's) refuses commands before connect.
      if (connection.status === 'wait') await connection.connect();
      while (!signal.aborted) {
        let reply: [string, [string, string[]][]][] | null;
        try {
          reply = await connection.xread(
            'COUNT',
            FOLLOW_COUNT,
            'BLOCK',
            FOLLOW_BLOCK_MS,
            'STREAMS',
            this.key,
            cursor,
          );
        } catch (error: unknown) {
          if (signal.aborted) return;
          throw new StoreUnavailableError(`follow events: ${describeError(error)}`, { cause: error });
        }
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            cursor = id;
            const event = decodeEvent(id, fields);
            if (event) yield event;
          }
        }
      }
    } finally {
      signal.removeEventListener('abort', stop);
      this.blocking.delete(connection);
      connection.disconnect();
    }
  }

  async close(): Promise<void> {
    for (const connection of this.blocking) connection.disconnect();
    this.blocking.clear();
    if (!this.ownsRedis || this.redis.status === 'end') return;
    // A client still reconnecting would hold QUIT until Redis came back: drop it instead.
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS).unref(),
    );
    try {
      if ((await Promise.race([this.redis.quit(), timeout])) === 'timeout') this.redis.disconnect();
    } catch {
      this.redis.disconnect();
    }
  }
}

/**
 * A stream on a connection of its own: `cli` fails fast when Redis is away; `controller` keeps
 * reconnecting, and the sink holds entries back meanwhile instead of queueing them in the client.
 */
export async function openEventStream(config: Config, mode: RedisMode): Promise<RedisEventStream> {
  const redis = await createRedis({
    url: config.REDIS_URL,
    mode,
    connectionName: `swarmkeeper-events-${mode}`,
    ...(config.REDIS_PASSWORD_FILE !== undefined && { passwordFile: config.REDIS_PASSWORD_FILE }),
    sentinels: sentinelsOf(config),
    sentinelName: config.REDIS_SENTINEL_NAME,
  });
  return new RedisEventStream({ redis, keys: new KeySpace(config.SWARMKEEPER_PREFIX) });
}

/** The XADD field/value list of an entry: only the fields of {@link EVENT_FIELDS}, present ones only. */
export function encodeEvent(entry: EventEntry): string[] {
  const out: string[] = ['ts', entry.ts, 'level', entry.level, 'msg', entry.msg];
  out.push('kind', entry.kind, 'name', entry.name);
  if (entry.verb !== undefined) out.push('verb', entry.verb);
  if (entry.action !== undefined) out.push('action', JSON.stringify(entry.action));
  if (entry.drift !== undefined) out.push('drift', JSON.stringify(entry.drift));
  if (entry.durationMs !== undefined) out.push('durationMs', String(entry.durationMs));
  if (entry.message !== undefined) out.push('message', entry.message);
  return out;
}

/**
 * An entry read back; undefined when it lacks the required fields (written by hand, say). Parts
 * that do not parse (a `drift` that is not JSON) are left out rather than failing the read.
 */
export function decodeEvent(id: string, flat: readonly string[]): StoredEvent | undefined {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i] ?? '', flat[i + 1] ?? '');
  const ts = fields.get('ts');
  const msg = fields.get('msg');
  const kind = fields.get('kind');
  const name = fields.get('name');
  if (ts === undefined || msg === undefined || kind === undefined || name === undefined) return undefined;
  const level = fields.get('level');
  const verb = fields.get('verb');
  const action = parseJson(fields.get('action'));
  const drift = parseJson(fields.get('drift'));
  const duration = Number(fields.get('durationMs'));
  const message = fields.get('message');
  return {
    id,
    ts,
    level: level === 'warn' || level === 'error' ? level : 'info',
    msg,
    kind,
    name,
    ...(verb !== undefined && { verb }),
    ...(Array.isArray(action) && { action: action.map(String) }),
    ...(Array.isArray(drift) && { drift: drift.filter(isDriftEntry) }),
    ...(fields.has('durationMs') && Number.isFinite(duration) && { durationMs: duration }),
    ...(message !== undefined && { message }),
  };
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isDriftEntry(value: unknown): value is DriftEntry {
  return (
    typeof value === 'object' && value !== null && typeof (value as { path?: unknown }).path === 'string'
  );
}

function matches(event: StoredEvent, query: EventQuery): boolean {
  return (
    (query.kind === undefined || event.kind === query.kind) &&
    (query.name === undefined || event.name === query.name)
  );
}

/** The ID just before `id`, for an inclusive XREVRANGE end (`(` exclusive ranges need Redis 6.2). */
export function previousId(id: string): string | undefined {
  const match = /^(\d+)-(\d+)$/.exec(id);
  if (!match) return undefined;
  const ms = BigInt(match[1] ?? '0');
  const seq = BigInt(match[2] ?? '0');
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  if (ms === 0n) return undefined;
  return `${ms - 1n}-18446744073709551615`;
}

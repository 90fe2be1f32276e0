/**
 * The desired-state store on Redis: one HASH per resource (see codec.ts for the fields), written
 * only in MULTI/EXEC transactions so a manifest set lands whole, and read so that no listing sees
 * half of one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { distinctUntilChanged, Observable } from 'rxjs';
import { InvalidResourceError, StoreUnavailableError, SwarmkeeperError, describeError } from '../errors.js';
import { KINDS, type Kind } from '../resources/kinds/index.js';
import { refOf, type Resource } from '../resources/resource.js';
import {
  changedFields,
  decodeRecord,
  decodeResource,
  decodeStatus,
  encodeResource,
  encodeStatus,
} from './codec.js';
import type { KeySpace } from './keys.js';
import type {
  ApplyOptions,
  ApplyResult,
  DesiredChange,
  DesiredStore,
  PruneGuard,
  ResourceStatus,
  StoreAvailability,
  StoredRecord,
  WatchOptions,
} from './store.js';

/** Reports something the operator should know once, e.g. that keyspace notifications are unavailable. */
export type StoreNotice = (message: string, fields: Readonly<Record<string, unknown>>) => void;

export type KeyspaceNotificationState = 'unknown' | 'enabled' | 'unavailable';

export interface RedisDesiredStoreOptions {
  readonly redis: Redis;
  readonly keys: KeySpace;
  /** The connection `watch()` subscribes on; default `redis.duplicate()`. Each watch gets its own and closes it. */
  readonly subscriberFactory?: () => Redis;
  /**
   * Called at most once per store when `watch()` finds it cannot turn keyspace notifications on
   * (CONFIG refused, as on managed Redis), and when the periodic rescan starts or stops failing.
   */
  readonly onNotice?: StoreNotice;
  /** Whether `close()` quits `redis`; default true. */
  readonly ownsRedis?: boolean;
}

/** Flags `notify-keyspace-events` needs: keyspace channel, generic (DEL, RENAME, EXPIRE), hash, expired, evicted. */
export const REQUIRED_KEYSPACE_FLAGS = ['K', 'g', 'h', 'x', 'e'] as const;

/** What the `A` alias in `notify-keyspace-events` stands for. */
const ALL_EVENTS_ALIAS = 'g$lshzxetd';

const SCAN_COUNT = 500;
const READ_BATCH = 500;
/** Attempts at a listing that no write interleaved with; after that the last read is returned. */
const LIST_ATTEMPTS = 10;
/** Attempts at an apply whose WATCHed keys nobody changed before EXEC. */
const APPLY_ATTEMPTS = 10;
const CLOSE_TIMEOUT_MS = 2_000;

type HashRead =
  { readonly type: 'hash'; readonly fields: Record<string, string> } | { readonly type: 'wrong' };

/**
 * {@link DesiredStore} on Redis.
 *
 * Keyspace notifications: `watch()` turns on the flags it needs in `notify-keyspace-events`,
 * keeping any already set. When Redis refuses CONFIG, `keyspaceNotifications` becomes
 * `'unavailable'` and `onNotice` is called once, so the caller can log one line; changes then
 * arrive through the changes channel and the periodic rescan. The keyspace pattern is subscribed
 * all the same, so notifications an operator enabled on the server are still used.
 *
 * Every write also bumps `keys.generation`, which lets `list()` retry a read that a write
 * interleaved with when the records span several read batches.
 */
export class RedisDesiredStore implements DesiredStore {
  private readonly redis: Redis;
  private readonly keys: KeySpace;
  private readonly subscriberFactory: () => Redis;
  private readonly onNotice: StoreNotice | undefined;
  private readonly ownsRedis: boolean;
  private readonly subscribers = new Set<Redis>();
  /** WATCH and EXEC act on the whole connection, so this store's transactions run one at a time. */
  private writeQueue: Promise<unknown> = Promise.resolve();
  private keyspaceSetup: Promise<void> | undefined;
  private keyspaceState: KeyspaceNotificationState = 'unknown';
  /** The last connection error since the connection was last ready, for `availability()`. */
  private lastConnectionError: string | undefined;
  /**
   * The last record decoded per key with the hash it came from: a relist of thousands of
   * unchanged records then costs a string compare each instead of a schema validation, and
   * hands back the same objects, so callers can tell "unchanged" by identity.
   */
  private decoded = new Map<string, { readonly raw: string; readonly record: StoredRecord }>();

  constructor(options: RedisDesiredStoreOptions) {
    this.redis = options.redis;
    this.redis.on('error', (error: unknown) => {
      this.lastConnectionError = describeError(error);
    });
    this.redis.on('ready', () => {
      this.lastConnectionError = undefined;
    });
    this.keys = options.keys;
    this.subscriberFactory = options.subscriberFactory ?? (() => options.redis.duplicate());
    this.onNotice = options.onNotice;
    this.ownsRedis = options.ownsRedis ?? true;
  }

  /** `'unknown'` until the first `watch()` has checked the server. */
  get keyspaceNotifications(): KeyspaceNotificationState {
    return this.keyspaceState;
  }

  async list(): Promise<StoredRecord[]> {
    return guard('list desired records', async () => {
      let snapshot: Map<string, HashRead> = new Map();
      for (let attempt = 1; attempt <= LIST_ATTEMPTS; attempt++) {
        const read = await this.readSnapshot();
        snapshot = read.hashes;
        if (read.consistent) break;
      }
      const records: StoredRecord[] = [];
      const previous = this.decoded;
      this.decoded = new Map();
      for (const [key, read] of snapshot) {
        const record = await this.toRecord(key, read, previous);
        if (record) records.push(record);
      }
      return records.sort(compareRecords);
    });
  }

  async get(kind: Kind, name: string): Promise<StoredRecord | undefined> {
    return guard(`read ${kind}/${name}`, async () => {
      const key = this.keys.desired(kind, name);
      const [read] = await this.readHashes([key]);
      if (read === undefined) this.decoded.delete(key);
      return read === undefined ? undefined : this.toRecord(key, read, this.decoded);
    });
  }

  async apply(resources: readonly Resource[], options: ApplyOptions = {}): Promise<ApplyResult[]> {
    const planned = planWrites(this.keys, resources);
    if (planned.length === 0) return [];
    return this.exclusive(() =>
      guard('apply', async () => {
        const keys = planned.map((p) => p.key);
        for (let attempt = 1; attempt <= APPLY_ATTEMPTS; attempt++) {
          // WATCH before reading, so EXEC fails if anyone wrote these keys after we looked.
          await this.redis.watch(...keys);
          let results: ApplyResult[];
          try {
            const current = await this.readHashes(keys);
            results = planned.map((p, i) => this.compare(p, current[i]));
          } catch (error: unknown) {
            await this.redis.unwatch().catch(() => undefined);
            throw error;
          }
          const changed = planned.filter((_, i) => results[i]?.action !== 'unchanged');
          if (options.dryRun === true || changed.length === 0) {
            await this.redis.unwatch();
            return results;
          }
          const tx = this.redis.multi();
          for (const p of changed) tx.del(p.key).hset(p.key, p.hash);
          tx.incr(this.keys.generation);
          for (const p of changed) tx.publish(this.keys.changesChannel, p.ref);
          const outcome = await tx.exec();
          if (outcome !== null) {
            throwFirstError(outcome);
            return results;
          }
          // Someone else wrote one of the keys between our read and EXEC: read again, so the
          // reported actions describe what this EXEC actually changed.
          await sleep(Math.floor(Math.random() * 10 * attempt));
        }
        throw new StoreUnavailableError(
          `apply gave up after ${APPLY_ATTEMPTS} attempts: other writers kept changing the same records`,
        );
      }),
    );
  }

  async delete(kind: Kind, name: string): Promise<boolean> {
    return this.exclusive(() =>
      guard(`delete ${kind}/${name}`, async () => {
        const outcome = await this.redis
          .multi()
          .del(this.keys.desired(kind, name))
          .incr(this.keys.generation)
          .publish(this.keys.changesChannel, `${kind}/${name}`)
          .exec();
        if (outcome === null) throw new StoreUnavailableError(`delete ${kind}/${name}: transaction aborted`);
        throwFirstError(outcome);
        return outcome[0]?.[1] === 1;
      }),
    );
  }

  async readStatus(kind: Kind, name: string): Promise<ResourceStatus | undefined> {
    return guard(`read status of ${kind}/${name}`, async () =>
      decodeStatus(await this.redis.hgetall(this.keys.status(kind, name))),
    );
  }

  async writeStatus(kind: Kind, name: string, status: ResourceStatus): Promise<void> {
    const fields = encodeStatus(status);
    if (Object.keys(fields).length === 0) return;
    await guard(`write status of ${kind}/${name}`, async () => {
      await this.redis.hset(this.keys.status(kind, name), fields);
    });
  }

  async writeStatuses(
    entries: readonly { kind: Kind; name: string; status: ResourceStatus | undefined }[],
  ): Promise<void> {
    if (entries.length === 0) return;
    await guard(`write ${entries.length} statuses`, async () => {
      const pipeline = this.redis.pipeline();
      for (const { kind, name, status } of entries) {
        const key = this.keys.status(kind, name);
        if (status === undefined) pipeline.del(key);
        else {
          const fields = encodeStatus(status);
          if (Object.keys(fields).length > 0) pipeline.hset(key, fields);
        }
      }
      const replies = (await pipeline.exec()) ?? [];
      const failed = replies.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    });
  }

  async clearStatus(kind: Kind, name: string): Promise<void> {
    await guard(`clear status of ${kind}/${name}`, async () => {
      await this.redis.del(this.keys.status(kind, name));
    });
  }

  async readStatuses(refs: readonly { kind: Kind; name: string }[]): Promise<Map<string, ResourceStatus>> {
    return guard('read statuses', async () => {
      const statuses = new Map<string, ResourceStatus>();
      for (let start = 0; start < refs.length; start += STATUS_BATCH) {
        const batch = refs.slice(start, start + STATUS_BATCH);
        const pipeline = this.redis.pipeline();
        for (const ref of batch) pipeline.hgetall(this.keys.status(ref.kind, ref.name));
        const replies = (await pipeline.exec()) ?? [];
        batch.forEach((ref, index) => {
          const [error, hash] = replies[index] ?? [null, undefined];
          if (error || !isStringRecord(hash)) return;
          const status = decodeStatus(hash);
          if (status) statuses.set(`${ref.kind}/${ref.name}`, status);
        });
      }
      return statuses;
    });
  }

  async readGuard(): Promise<PruneGuard | undefined> {
    return guard('read the prune guard', async () => decodeGuard(await this.redis.hgetall(this.keys.guard)));
  }

  async writeGuard(pruneGuard: PruneGuard): Promise<void> {
    await guard('write the prune guard', async () => {
      await this.redis.hset(this.keys.guard, {
        state: pruneGuard.state,
        reason: pruneGuard.reason,
        since: pruneGuard.since,
        desiredCount: String(pruneGuard.desiredCount),
        previousCount: String(pruneGuard.previousCount),
      });
    });
  }

  async clearGuard(): Promise<void> {
    await guard('clear the prune guard', async () => {
      await this.redis.del(this.keys.guard);
    });
  }

  watch(options: WatchOptions): Observable<DesiredChange> {
    return new Observable<DesiredChange>((subscriber) => {
      let closed = false;
      let connection: Redis | undefined;
      let scanning = false;
      let scanFailing = false;

      const rescan = async (): Promise<void> => {
        if (scanning) return;
        scanning = true;
        try {
          const keys = await this.scanKeys();
          if (scanFailing) this.onNotice?.('desired-state rescan works again', {});
          scanFailing = false;
          for (const key of keys) {
            if (closed) return;
            const change = this.changeForKey(key, 'scan');
            if (change) subscriber.next(change);
          }
        } catch (error: unknown) {
          // The next tick tries again; say so once, not on every tick of an outage.
          if (!scanFailing) this.onNotice?.('desired-state rescan failed', { error: describeError(error) });
          scanFailing = true;
        } finally {
          scanning = false;
        }
      };
      const timer = setInterval(() => void rescan(), options.rescanIntervalMs);
      // A Redis that restarted has forgotten a CONFIG SET: set the flags again on every reconnect.
      const reenable = (): void => {
        if (closed || this.keyspaceState !== 'enabled') return;
        this.keyspaceSetup = undefined;
        this.enableKeyspaceNotifications().catch(() => undefined);
      };
      this.redis.on('ready', reenable);

      const start = async (): Promise<void> => {
        await this.enableKeyspaceNotifications();
        if (closed) return;
        const sub = this.subscriberFactory();
        connection = sub;
        this.subscribers.add(sub);
        // ioredis reconnects and resubscribes by itself; `onSubscribed` covers what is missed meanwhile.
        sub.on('error', () => undefined);
        // A lazily connecting client with the offline queue off (the CLI's) would refuse to subscribe.
        if (sub.status === 'wait') await sub.connect();
        const keyspacePrefix = `__keyspace@${this.db}__:`;
        sub.on('pmessage', (_pattern: string, channel: string) => {
          if (!channel.startsWith(keyspacePrefix)) return;
          const change = this.changeForKey(channel.slice(keyspacePrefix.length), 'keyspace');
          if (change) subscriber.next(change);
        });
        sub.on('message', (channel: string, message: string) => {
          if (channel !== this.keys.changesChannel) return;
          const change = parseChangeMessage(message);
          if (change) subscriber.next(change);
        });
        const subscribe = async (): Promise<void> => {
          // Pattern first: once the changes channel has a subscriber, both sources are live.
          await sub.psubscribe(this.keys.keyspacePattern(this.db));
          await sub.subscribe(this.keys.changesChannel);
        };
        await subscribe();
        if (!closed) options.onSubscribed?.();
        // ioredis resubscribes after a reconnect without saying when it is done. Subscribing again
        // (harmless twice) and waiting for the replies tells when notifications flow again, so a
        // list started then misses nothing.
        sub.on('ready', () => {
          subscribe().then(
            () => {
              if (!closed) options.onSubscribed?.();
            },
            () => undefined, // the connection dropped again: its next 'ready' tries again
          );
        });
      };
      start().catch((error: unknown) => {
        if (!closed) subscriber.error(wrapError('watch desired records', error));
      });

      return () => {
        closed = true;
        clearInterval(timer);
        this.redis.off('ready', reenable);
        if (connection) {
          const sub = connection;
          this.subscribers.delete(sub);
          void closeQuietly(sub);
        }
      };
    });
  }

  /**
   * The connection's state as it changes: available on `ready`, not when it closes (and on each
   * failed reconnect, deduplicated), with the last connection error as the reason. Starts with the
   * current state unless the first connect is still under way. Commands sent meanwhile wait for
   * the reconnect (the controller's patient client).
   */
  availability(): Observable<StoreAvailability> {
    const redis = this.redis;
    return new Observable<StoreAvailability>((subscriber) => {
      const up = (): void => subscriber.next({ available: true });
      const down = (): void =>
        subscriber.next({
          available: false,
          reason: this.lastConnectionError ?? 'the connection was closed',
        });
      if (redis.status === 'ready') up();
      else if (redis.status === 'reconnecting' || redis.status === 'close' || redis.status === 'end') down();
      redis.on('ready', up);
      redis.on('close', down);
      redis.on('end', down);
      return () => {
        redis.off('ready', up);
        redis.off('close', down);
        redis.off('end', down);
      };
    }).pipe(distinctUntilChanged((a, b) => a.available === b.available));
  }

  async close(): Promise<void> {
    const connections = [...this.subscribers];
    this.subscribers.clear();
    if (this.ownsRedis) connections.push(this.redis);
    // Let a transaction in flight finish before its connection goes.
    await this.writeQueue.catch(() => undefined);
    await Promise.all(connections.map(closeQuietly));
  }

  private get db(): number {
    return this.redis.options.db ?? 0;
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.writeQueue.then(task, task);
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  private compare(planned: PlannedWrite, current: HashRead | undefined): ApplyResult {
    const { kind, name } = planned;
    if (current === undefined) {
      return { kind, name, action: 'created', changedFields: Object.keys(planned.hash).sort() };
    }
    if (current.type === 'wrong') {
      return { kind, name, action: 'configured', changedFields: Object.keys(planned.hash).sort() };
    }
    // A valid record is compared in its canonical form, so a redis-cli edit that only spelled a
    // value differently (spaces in JSON, say) does not count as a change.
    const decoded = decodeResource(kind, name, current.fields);
    const before = decoded.ok ? encodeResource(decoded.resource) : current.fields;
    const fields = changedFields(before, planned.hash);
    return { kind, name, action: fields.length === 0 ? 'unchanged' : 'configured', changedFields: fields };
  }

  /** Every desired key, then their hashes, reporting whether a store write landed in between. */
  private async readSnapshot(): Promise<{ hashes: Map<string, HashRead>; consistent: boolean }> {
    const before = await this.redis.get(this.keys.generation);
    const keys = await this.scanKeys();
    const hashes = new Map<string, HashRead>();
    let consistent = true;
    for (let start = 0; start < keys.length; start += READ_BATCH) {
      const batch = keys.slice(start, start + READ_BATCH);
      const pipeline = this.redis.pipeline().get(this.keys.generation);
      for (const key of batch) pipeline.hgetall(key);
      const replies = (await pipeline.exec()) ?? [];
      const [generationReply, ...hashReplies] = replies;
      if (generationReply?.[1] !== before) consistent = false;
      batch.forEach((key, i) => {
        const read = toHashRead(hashReplies[i]);
        if (read) hashes.set(key, read);
      });
    }
    if (keys.length === 0 && (await this.redis.get(this.keys.generation)) !== before) consistent = false;
    return { hashes, consistent };
  }

  /** HGETALL for each key in one round trip; undefined for a key that does not exist. */
  private async readHashes(keys: readonly string[]): Promise<(HashRead | undefined)[]> {
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.hgetall(key);
    const replies = (await pipeline.exec()) ?? [];
    return keys.map((_, i) => toHashRead(replies[i]));
  }

  private async scanKeys(): Promise<string[]> {
    const keys = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(
        cursor,
        'MATCH',
        this.keys.desiredPattern(),
        'COUNT',
        SCAN_COUNT,
      );
      cursor = next;
      for (const key of batch) keys.add(key);
    } while (cursor !== '0');
    return [...keys];
  }

  async changeCounter(): Promise<string | undefined> {
    if (this.keyspaceState !== 'enabled') return undefined;
    return guard('read the change counter', async () => (await this.redis.get(this.keys.generation)) ?? '0');
  }

  private async toRecord(
    key: string,
    read: HashRead,
    memo: Map<string, { readonly raw: string; readonly record: StoredRecord }>,
  ): Promise<StoredRecord | undefined> {
    if (read.type === 'hash') {
      const raw = JSON.stringify(read.fields);
      const known = memo.get(key);
      const record = known?.raw === raw ? known.record : this.decodeHash(key, read.fields);
      this.decoded.set(key, { raw, record });
      return record;
    }
    this.decoded.delete(key);
    return this.decodeOther(key);
  }

  private decodeHash(key: string, fields: Record<string, string>): StoredRecord {
    const parsed = this.keys.parseDesired(key);
    if (parsed === undefined) return this.badKey(key);
    return decodeRecord({ key, kind: parsed.kind, name: parsed.name, hash: fields });
  }

  private badKey(key: string): StoredRecord {
    return {
      ok: false,
      key,
      kind: '',
      name: '',
      issues: [{ path: 'key', message: `must have the form ${this.keys.prefix}:desired:<Kind>:<name>` }],
    };
  }

  /** A key that HGETALL refused: it may have become a hash since, or be of another type. */
  private async decodeOther(key: string): Promise<StoredRecord | undefined> {
    const parsed = this.keys.parseDesired(key);
    if (parsed === undefined) return this.badKey(key);
    const type = await this.redis.type(key);
    if (type === 'none') return undefined;
    if (type === 'hash') return this.decodeHash(key, await this.redis.hgetall(key));
    const { kind, name } = parsed;
    return { ok: false, key, kind, name, issues: [{ path: 'type', message: `must be a HASH, not ${type}` }] };
  }

  private changeForKey(key: string, via: DesiredChange['via']): DesiredChange | undefined {
    const parsed = this.keys.parseDesired(key);
    return parsed ? { kind: parsed.kind, name: parsed.name, via } : undefined;
  }

  /** Runs once per store; later watches reuse the outcome. */
  private enableKeyspaceNotifications(): Promise<void> {
    this.keyspaceSetup ??= this.configureKeyspaceNotifications().catch((error: unknown) => {
      // Not a verdict on CONFIG (Redis was unreachable, say): let the next watch ask again.
      this.keyspaceSetup = undefined;
      throw error;
    });
    return this.keyspaceSetup;
  }

  private async configureKeyspaceNotifications(): Promise<void> {
    let current: string;
    try {
      const reply = await this.redis.call('CONFIG', 'GET', 'notify-keyspace-events');
      current = Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : '';
    } catch (error: unknown) {
      this.keyspaceUnavailable(error);
      return;
    }
    const missing = missingKeyspaceFlags(current);
    if (missing.length > 0) {
      try {
        await this.redis.call('CONFIG', 'SET', 'notify-keyspace-events', `${current}${missing.join('')}`);
      } catch (error: unknown) {
        this.keyspaceUnavailable(error);
        return;
      }
    }
    this.keyspaceState = 'enabled';
  }

  private keyspaceUnavailable(error: unknown): void {
    if (!isCommandRefused(error)) throw error;
    this.keyspaceState = 'unavailable';
    this.onNotice?.(
      'cannot check or enable Redis keyspace notifications; raw redis-cli edits may be noticed only by the periodic rescan',
      { reason: describeError(error), needed: REQUIRED_KEYSPACE_FLAGS.join('') },
    );
  }
}

/** The flags from {@link REQUIRED_KEYSPACE_FLAGS} that a `notify-keyspace-events` value lacks. */
export function missingKeyspaceFlags(current: string): string[] {
  const present = current.includes('A') ? current + ALL_EVENTS_ALIAS : current;
  return REQUIRED_KEYSPACE_FLAGS.filter((flag) => !present.includes(flag));
}

interface PlannedWrite {
  readonly kind: Kind;
  readonly name: string;
  readonly ref: string;
  readonly key: string;
  readonly hash: Record<string, string>;
}

/**
 * Encodes every resource and checks it reads back as itself, so nothing is written that the
 * store would then report as invalid (a Config still carrying `file`, say).
 */
function planWrites(keys: KeySpace, resources: readonly Resource[]): PlannedWrite[] {
  const seen = new Set<string>();
  return resources.map((resource) => {
    const { kind } = resource;
    const { name } = resource.metadata;
    const ref = refOf(resource);
    if (seen.has(ref)) {
      throw new InvalidResourceError(ref, [
        { path: 'metadata.name', message: 'appears more than once in the set' },
      ]);
    }
    seen.add(ref);
    const hash = encodeResource(resource);
    const check = decodeResource(kind, name, hash);
    if (!check.ok) throw new InvalidResourceError(ref, check.issues);
    return { kind, name, ref, key: keys.desired(kind, name), hash };
  });
}

/** The server answered and said no (NOPERM, unknown or renamed command), rather than failing to answer. */
function isCommandRefused(error: unknown): boolean {
  if (!(error instanceof Error) || error.name !== 'ReplyError') return false;
  return !/^(WRONGPASS|NOAUTH|LOADING|BUSY|MASTERDOWN|CLUSTERDOWN)\b/.test(error.message);
}

function toHashRead(reply: [Error | null, unknown] | undefined): HashRead | undefined {
  if (reply === undefined) return undefined;
  const [error, value] = reply;
  if (error) {
    if (error.message.startsWith('WRONGTYPE')) return { type: 'wrong' };
    throw error;
  }
  if (!isStringRecord(value) || Object.keys(value).length === 0) return undefined;
  return { type: 'hash', fields: value };
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' && value !== null && Object.values(value).every((v) => typeof v === 'string')
  );
}

function throwFirstError(outcome: readonly [Error | null, unknown][]): void {
  const failed = outcome.find(([error]) => error !== null);
  if (failed?.[0]) throw failed[0];
}

function parseChangeMessage(message: string): DesiredChange | undefined {
  const slash = message.indexOf('/');
  if (slash <= 0 || slash === message.length - 1) return undefined;
  return { kind: message.slice(0, slash), name: message.slice(slash + 1), via: 'publish' };
}

function kindRank(kind: string): number {
  const index = KINDS.indexOf(kind as Kind);
  return index === -1 ? KINDS.length : index;
}

function recordKind(record: StoredRecord): string {
  return record.ok ? record.resource.kind : record.kind;
}

function recordName(record: StoredRecord): string {
  return record.ok ? record.resource.metadata.name : record.name;
}

function compareRecords(a: StoredRecord, b: StoredRecord): number {
  const kindA = recordKind(a);
  const kindB = recordKind(b);
  return (
    kindRank(kindA) - kindRank(kindB) ||
    compareText(kindA, kindB) ||
    compareText(recordName(a), recordName(b)) ||
    compareText(a.key, b.key)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const STATUS_BATCH = 500;

function decodeGuard(hash: Record<string, string>): PruneGuard | undefined {
  if (hash.state !== 'held' && hash.state !== 'confirmed') return undefined;
  return {
    state: hash.state,
    reason: hash.reason ?? '',
    since: hash.since ?? '',
    desiredCount: Number(hash.desiredCount ?? 0),
    previousCount: Number(hash.previousCount ?? 0),
  };
}

async function guard<T>(what: string, task: () => Promise<T>): Promise<T> {
  try {
    return await task();
  } catch (error: unknown) {
    throw wrapError(what, error);
  }
}

function wrapError(what: string, error: unknown): SwarmkeeperError {
  if (error instanceof SwarmkeeperError) return error;
  return new StoreUnavailableError(`${what}: ${describeError(error)}`, { cause: error });
}

/** QUIT politely, but never hang on a connection that is down or still retrying. */
async function closeQuietly(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  const timeout = sleep(CLOSE_TIMEOUT_MS, 'timeout' as const, { ref: false });
  try {
    const outcome = await Promise.race([redis.quit(), timeout]);
    if (outcome === 'timeout') redis.disconnect();
  } catch {
    redis.disconnect();
  }
}

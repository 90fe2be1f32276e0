/**
 * The leader lease: one Redis STRING (`keys.leader`) naming the replica that may reconcile, kept
 * alive by its holder and gone when the holder stops renewing. Redis is the only judge of who
 * holds it: every change is a single atomic command or script, so two replicas can never both be
 * told they acquired or renewed it.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { StoreUnavailableError, SwarmkeeperError, describeError } from '../errors.js';
import type { KeySpace } from './keys.js';

export interface LeaseHolder {
  readonly holder: string;
  /** What Redis has left of the lease; `Infinity` when the key has no expiry (set by hand). */
  readonly ttlMs: number;
}

/** A lease that at most one holder has at a time. Failures to reach the store reject. */
export interface Lease {
  /** Takes the lease for `ttlMs` if nobody holds it. False when someone does, including `holder` itself. */
  tryAcquire(holder: string, ttlMs: number): Promise<boolean>;
  /** Extends the lease to `ttlMs` from now, only while `holder` still holds it. */
  renew(holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up, only while `holder` still holds it; true when it did. */
  release(holder: string): Promise<boolean>;
  /** Who holds the lease and for how much longer, for status and metrics; undefined when nobody does. */
  holder(): Promise<LeaseHolder | undefined>;
}

export interface RedisLeaseOptions {
  readonly redis: Redis;
  readonly keys: KeySpace;
}

class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

// Compare-then-act must be one script: a GET followed by a separate PEXPIRE or DEL could act on a
// lease that expired and went to another replica in between.
const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);

const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);

// One script so the holder and its remaining time describe the same moment.
const READ = new LuaScript(`
local holder = redis.call('GET', KEYS[1])
if not holder then
  return nil
end
return {holder, redis.call('PTTL', KEYS[1])}
`);

/** {@link Lease} on one Redis key; safe to share the store's connection. */
export class RedisLease implements Lease {
  private readonly redis: Redis;
  private readonly key: string;

  constructor(options: RedisLeaseOptions) {
    this.redis = options.redis;
    this.key = options.keys.leader;
  }

  async tryAcquire(holder: string, ttlMs: number): Promise<boolean> {
    checkArguments(holder, ttlMs);
    return guard('acquire the leader lease', async () => {
      const reply = await this.redis.set(this.key, holder, 'PX', ttlMs, 'NX');
      return reply === 'OK';
    });
  }

  async renew(holder: string, ttlMs: number): Promise<boolean> {
    checkArguments(holder, ttlMs);
    return guard('renew the leader lease', async () => {
      const reply = await this.run(RENEW, holder, String(ttlMs));
      return reply === 1;
    });
  }

  async release(holder: string): Promise<boolean> {
    checkHolder(holder);
    return guard('release the leader lease', async () => {
      const reply = await this.run(RELEASE, holder);
      return reply === 1;
    });
  }

  async holder(): Promise<LeaseHolder | undefined> {
    return guard('read the leader lease', async () => {
      const reply = await this.run(READ);
      if (reply === null) return undefined;
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'number') {
        throw new StoreUnavailableError(`read the leader lease: unexpected reply ${JSON.stringify(reply)}`);
      }
      // PTTL is -1 for a key without expiry; a lease like that never frees itself, which status should show.
      const ttlMs = reply[1] < 0 ? Number.POSITIVE_INFINITY : reply[1];
      return { holder: reply[0], ttlMs };
    });
  }

  /**
   * EVALSHA first so the script body crosses the wire only once per server; NOSCRIPT (a restarted
   * or flushed server) means the script did not run, so sending it in full cannot apply it twice.
   */
  private async run(script: LuaScript, ...args: string[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(script.sha, 1, this.key, ...args);
    } catch (error: unknown) {
      if (!isNoScript(error)) throw error;
      return await this.redis.eval(script.source, 1, this.key, ...args);
    }
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

function checkHolder(holder: string): void {
  // An empty identity would let every replica configured without one believe it is the holder.
  if (holder === '') throw new RangeError('lease holder must be a non-empty string');
}

function checkArguments(holder: string, ttlMs: number): void {
  checkHolder(holder);
  // PX takes a positive integer; rounding here would silently change the lease the caller asked for.
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`lease ttlMs must be a positive integer, got ${ttlMs}`);
  }
}

async function guard<T>(what: string, task: () => Promise<T>): Promise<T> {
  try {
    return await task();
  } catch (error: unknown) {
    if (error instanceof SwarmkeeperError) throw error;
    throw new StoreUnavailableError(`${what}: ${describeError(error)}`, { cause: error });
  }
}

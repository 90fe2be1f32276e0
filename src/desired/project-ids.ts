/**
 * Numeric XFS project IDs for home folders, kept in Redis so every controller (and every restart
 * of one) agrees on them. The seed's set_quota.sh derived IDs from /etc/projid and got them wrong
 * (empty, or 1 for everyone): two folders sharing an ID share one quota, and an ID handed to a
 * new user while an old folder still carries it on disk would charge the old files to the new
 * user. So a name keeps its ID forever and an ID is never handed out twice, released or not.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  ConfigError,
  ProjectIdsExhaustedError,
  QuotaEntryError,
  StoreUnavailableError,
  SwarmkeeperError,
  describeError,
} from '../errors.js';
import type { KeySpace } from './keys.js';

export interface ProjectIdAssignment {
  readonly id: number;
  /** True after `release` until the name is allocated again; the ID stays reserved either way. */
  readonly released: boolean;
}

export interface ProjectIdAllocator {
  /** The ID of every name, giving new names fresh IDs; a released name gets its old ID back. */
  allocate(projects: readonly string[]): Promise<Map<string, number>>;
  /** IDs of the names that have one (released or not); unknown names are absent. Allocates nothing. */
  lookup(names: readonly string[]): Promise<Map<string, number>>;
  /** Marks the name released; its ID is never given to another name. False when the name has no ID. */
  release(name: string): Promise<boolean>;
  /** Every name that ever got an ID. */
  list(): Promise<Map<string, ProjectIdAssignment>>;
}

export interface RedisProjectIdAllocatorOptions {
  readonly redis: Redis;
  readonly keys: KeySpace;
  /** The first ID handed out; default 1000, clear of the small IDs administrators pick by hand. */
  readonly firstId?: number;
  /** The last ID that may be handed out; default 2^32-2 (2^32-1 is xfs_quota's "invalid"). */
  readonly maxId?: number;
}

export const DEFAULT_FIRST_PROJECT_ID = 1000;
export const MAX_PROJECT_ID = 0xffff_fffe;

/**
 * Names per script call. Each call is atomic; splitting keeps one call from holding Redis (which
 * runs scripts to completion, blocking every other client) for long on a very large batch.
 */
const ALLOCATE_BATCH = 1000;

// Two passes so a batch that would run past maxId fails before writing anything.
// The counter holds the last ID handed out; it only ever grows, which is what keeps IDs unique
// even after names are released.
const ALLOCATE_SCRIPT = `
local first = tonumber(ARGV[1])
local maxId = tonumber(ARGV[2])
local ids = {}
local missing = 0
for i = 3, #ARGV do
  local id = redis.call('HGET', KEYS[1], ARGV[i])
  ids[i - 2] = id
  if not id then missing = missing + 1 end
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if last < first - 1 then
  redis.call('SET', KEYS[2], first - 1)
  last = first - 1
end
if missing > 0 and last + missing > maxId then
  return redis.error_reply('SK_QUOTA_IDS_EXHAUSTED ' .. missing)
end
for i = 3, #ARGV do
  local name = ARGV[i]
  local id = ids[i - 2]
  if not id then
    id = redis.call('HGET', KEYS[1], name)
  end
  if not id then
    id = tostring(redis.call('INCR', KEYS[2]))
    redis.call('HSET', KEYS[1], name, id)
  end
  redis.call('SREM', KEYS[3], name)
  ids[i - 2] = id
end
return ids
`;

const RELEASE_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[1])
  return 1
end
return 0
`;

/** {@link ProjectIdAllocator} on Redis: one Lua script call per batch, so concurrent callers cannot race. */
export class RedisProjectIdAllocator implements ProjectIdAllocator {
  private readonly redis: Redis;
  private readonly keys: KeySpace;
  private readonly firstId: number;
  private readonly maxId: number;

  constructor(options: RedisProjectIdAllocatorOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.firstId = options.firstId ?? DEFAULT_FIRST_PROJECT_ID;
    this.maxId = options.maxId ?? MAX_PROJECT_ID;
    if (!isProjectId(this.firstId) || !isProjectId(this.maxId) || this.firstId > this.maxId) {
      throw new ConfigError(
        `project IDs need integers with 1 <= firstId (${this.firstId}) <= maxId (${this.maxId}) <= ${MAX_PROJECT_ID}`,
      );
    }
  }

  async allocate(projects: readonly string[]): Promise<Map<string, number>> {
    const names = uniqueNames(projects);
    const result = new Map<string, number>();
    for (let start = 0; start < names.length; start += ALLOCATE_BATCH) {
      const batch = names.slice(start, start + ALLOCATE_BATCH);
      const reply = await guard('allocate XFS project IDs', async () => {
        try {
          return await runScript(
            this.redis,
            ALLOCATE_SCRIPT,
            [this.keys.quota('projects'), this.keys.quota('next-id'), this.keys.quota('released')],
            [String(this.firstId), String(this.maxId), ...batch],
          );
        } catch (error: unknown) {
          const exhausted = /SK_QUOTA_IDS_EXHAUSTED (\d+)/.exec(describeError(error));
          if (exhausted) throw new ProjectIdsExhaustedError(this.maxId, Number(exhausted[1]));
          throw error;
        }
      });
      const ids = Array.isArray(reply) ? reply : [];
      batch.forEach((name, index) => result.set(name, parseStoredId(name, ids[index])));
    }
    return result;
  }

  async lookup(names: readonly string[]): Promise<Map<string, number>> {
    const unique = uniqueNames(names);
    const result = new Map<string, number>();
    if (unique.length === 0) return result;
    const values = await guard('look up XFS project IDs', () =>
      this.redis.hmget(this.keys.quota('projects'), ...unique),
    );
    unique.forEach((name, index) => {
      const value = values[index];
      if (value !== null && value !== undefined) result.set(name, parseStoredId(name, value));
    });
    return result;
  }

  async release(name: string): Promise<boolean> {
    checkName(name);
    const reply = await guard('release an XFS project ID', () =>
      runScript(
        this.redis,
        RELEASE_SCRIPT,
        [this.keys.quota('projects'), this.keys.quota('released')],
        [name],
      ),
    );
    return reply === 1;
  }

  async list(): Promise<Map<string, ProjectIdAssignment>> {
    return guard('list XFS project IDs', async () => {
      const outcome = await this.redis
        .multi()
        .hgetall(this.keys.quota('projects'))
        .smembers(this.keys.quota('released'))
        .exec();
      if (outcome === null) throw new StoreUnavailableError('list XFS project IDs: transaction aborted');
      const failed = outcome.find(([error]) => error !== null);
      if (failed?.[0]) throw failed[0];
      const hash = (outcome[0]?.[1] ?? {}) as Record<string, string>;
      const released = new Set((outcome[1]?.[1] ?? []) as string[]);
      const result = new Map<string, ProjectIdAssignment>();
      for (const [name, value] of Object.entries(hash)) {
        result.set(name, { id: parseStoredId(name, value), released: released.has(name) });
      }
      return result;
    });
  }
}

function isProjectId(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 1 && value <= MAX_PROJECT_ID;
}

function checkName(name: string): void {
  if (name.length === 0) throw new QuotaEntryError(name, 'project name must not be empty');
}

function uniqueNames(names: readonly string[]): string[] {
  for (const name of names) checkName(name);
  return [...new Set(names)];
}

/** A value someone edited by hand into something that is not an ID is reported, never used. */
function parseStoredId(name: string, value: unknown): number {
  const text = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
  const id = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!isProjectId(id)) {
    throw new StoreUnavailableError(
      `the stored XFS project ID of ${JSON.stringify(name)} is not an ID: ${JSON.stringify(text)}`,
    );
  }
  return id;
}

const scriptShas = new Map<string, string>();

/** EVALSHA, falling back to EVAL once when the server has not cached the script (restart, SCRIPT FLUSH). */
async function runScript(redis: Redis, script: string, keys: string[], args: string[]): Promise<unknown> {
  let sha = scriptShas.get(script);
  if (sha === undefined) {
    sha = createHash('sha1').update(script).digest('hex');
    scriptShas.set(script, sha);
  }
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error: unknown) {
    if (!describeError(error).startsWith('NOSCRIPT')) throw error;
    return redis.eval(script, keys.length, ...keys, ...args);
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

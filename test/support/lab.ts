/** Per-test isolation for the real lab: a Redis key prefix per test file and a Docker label per run. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The label every Docker object a test creates carries, with the run id as its value. */
export const TEST_RUN_LABEL = 'test.swarmkeeper.run';

export function testRunId(): string {
  const id = process.env.SWARMKEEPER_TEST_RUN;
  if (!id)
    throw new Error(
      'SWARMKEEPER_TEST_RUN is unset: run tests through vitest with test/support/global-setup.ts',
    );
  return id;
}

/** A Redis key prefix no other test uses. */
export function uniquePrefix(testName: string): string {
  return `sktest:${testName}:${randomBytes(4).toString('hex')}`;
}

export function rawRedis(): Redis {
  return new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2 });
}

/** Deletes every key under a test prefix. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Composes the Redis-backed desired store from the parsed configuration. */
import type { Config } from '../config.js';
import { KeySpace } from './keys.js';
import { createRedis, type RedisMode } from './redis-connection.js';
import { RedisDesiredStore, type StoreNotice } from './redis-store.js';

export interface OpenStoreOptions {
  /** Called for conditions worth one log line, such as keyspace notifications being unavailable. */
  readonly onNotice?: StoreNotice;
}

export async function openDesiredStore(
  config: Config,
  mode: RedisMode,
  options: OpenStoreOptions = {},
): Promise<RedisDesiredStore> {
  const redis = await createRedis({
    url: config.REDIS_URL,
    mode,
    connectionName: `swarmkeeper-${mode}`,
    ...(config.REDIS_PASSWORD_FILE !== undefined && { passwordFile: config.REDIS_PASSWORD_FILE }),
  });
  return new RedisDesiredStore({
    redis,
    keys: new KeySpace(config.SWARMKEEPER_PREFIX),
    ...(options.onNotice && { onNotice: options.onNotice }),
  });
}

/** Composes the Redis-backed desired store (and, for the controller, its journal) from the parsed configuration. */
import { sentinelsOf, type Config } from '../config.js';
import {
  RedisArchiveJournal,
  RedisNetworkRecreateJournal,
  type ArchiveJournal,
  type NetworkRecreateJournal,
} from './journal.js';
import { KeySpace } from './keys.js';
import { RedisLease, type Lease } from './lease.js';
import { RedisProjectIdAllocator, type ProjectIdAllocator } from './project-ids.js';
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
  return (await openControllerState(config, mode, options)).store;
}

export interface ControllerState {
  readonly store: RedisDesiredStore;
  readonly journal: NetworkRecreateJournal;
  readonly archives: ArchiveJournal;
  readonly projectIds: ProjectIdAllocator;
  readonly lease: Lease;
}

/** The store, the network-recreate journal and the quota project IDs on one connection; closing the store closes all. */
export async function openControllerState(
  config: Config,
  mode: RedisMode,
  options: OpenStoreOptions = {},
): Promise<ControllerState> {
  const redis = await createRedis({
    url: config.REDIS_URL,
    mode,
    connectionName: `swarmkeeper-${mode}`,
    ...(config.REDIS_PASSWORD_FILE !== undefined && { passwordFile: config.REDIS_PASSWORD_FILE }),
    sentinels: sentinelsOf(config),
    sentinelName: config.REDIS_SENTINEL_NAME,
  });
  const keys = new KeySpace(config.SWARMKEEPER_PREFIX);
  return {
    store: new RedisDesiredStore({ redis, keys, ...(options.onNotice && { onNotice: options.onNotice }) }),
    journal: new RedisNetworkRecreateJournal({ redis, keys }),
    archives: new RedisArchiveJournal({ redis, keys }),
    projectIds: new RedisProjectIdAllocator({ redis, keys }),
    lease: new RedisLease({ redis, keys }),
  };
}

/**
 * The network-recreate journal. Recreating a network detaches every service and container on it,
 * removes it, creates it again and reattaches them: a controller that dies half-way must find out,
 * on its next start, who was detached and with which aliases, or the users' notebook services stay
 * cut off. So the procedure writes down what it is about to do before it does it, advances the
 * phase after each step, and clears the entry only once everything is attached again.
 *
 * The entry is plain JSON (no Docker client types): the actuator fills it in, this module only
 * keeps it, in Redis at `KeySpace.networkJournal(name)`.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { InvalidResourceError, StoreUnavailableError, SwarmkeeperError, describeError } from '../errors.js';
import { toFieldIssues } from '../resources/resource.js';
import type { KeySpace } from './keys.js';

/**
 * Where a recreate stands. Each phase names the last step that completed:
 * `detaching` (journal written, detaching may have begun) → `detached` → `removed` → `created`
 * → `reattached`, after which the entry is cleared.
 */
export const NETWORK_RECREATE_PHASES = ['detaching', 'detached', 'removed', 'created', 'reattached'] as const;
export type NetworkRecreatePhase = (typeof NETWORK_RECREATE_PHASES)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A service that had the network in its spec, whoever made it. */
export interface JournalServiceAttachment {
  readonly id: string;
  readonly name: string;
  /** Carries `io.swarmkeeper.managed=true`; false for the hub's notebook services. */
  readonly managed: boolean;
  /** `TaskTemplate` (where the engine keeps them) or `Spec` (the deprecated top-level list). */
  readonly location: 'TaskTemplate' | 'Spec';
  /** Index in that list, so the network goes back where it was. */
  readonly position: number;
  /** The list entry as the engine returned it (Target, Aliases, DriverOpts, ...). */
  readonly entry: JsonObject;
}

/** A plain (non-task) container that was connected to the network. */
export interface JournalContainerAttachment {
  readonly id: string;
  readonly name: string;
  readonly managed: boolean;
  /** Aliases it had on the network, without the short container ID Docker adds by itself. */
  readonly aliases: readonly string[];
}

export interface NetworkRecreateEntry {
  readonly phase: NetworkRecreatePhase;
  /** The network's name, which is also the journal's key. */
  readonly network: string;
  /** The ID of the network being replaced. */
  readonly networkId: string;
  /** The ID of the replacement, once created. */
  readonly newNetworkId?: string;
  /** The create options for the replacement (NetworkCreateOptions, owner label included). */
  readonly body: JsonObject;
  readonly attachments: {
    readonly services: readonly JournalServiceAttachment[];
    readonly containers: readonly JournalContainerAttachment[];
  };
  /** ISO 8601. */
  readonly startedAt: string;
  /** ISO 8601, the last phase change. */
  readonly updatedAt: string;
}

/** Where recreates in progress are written down. One entry per network name. */
export interface NetworkRecreateJournal {
  load(name: string): Promise<NetworkRecreateEntry | undefined>;
  save(name: string, entry: NetworkRecreateEntry): Promise<void>;
  clear(name: string): Promise<void>;
  /** Names of networks with a recreate in progress: the controller resumes each at startup. */
  list(): Promise<string[]>;
}

const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);
const jsonObject = z.record(z.string(), jsonValue);

const entrySchema = z.strictObject({
  phase: z.enum(NETWORK_RECREATE_PHASES),
  network: z.string().min(1),
  networkId: z.string().min(1),
  newNetworkId: z.string().min(1).optional(),
  body: jsonObject,
  attachments: z.strictObject({
    services: z.array(
      z.strictObject({
        id: z.string().min(1),
        name: z.string(),
        managed: z.boolean(),
        location: z.enum(['TaskTemplate', 'Spec']),
        position: z.number().int().min(0),
        entry: jsonObject,
      }),
    ),
    containers: z.array(
      z.strictObject({
        id: z.string().min(1),
        name: z.string(),
        managed: z.boolean(),
        aliases: z.array(z.string()),
      }),
    ),
  }),
  startedAt: z.string(),
  updatedAt: z.string(),
});

/** Reads and checks a stored entry; a corrupt one is an InvalidResourceError naming every bad field. */
export function parseNetworkRecreateEntry(name: string, text: string): NetworkRecreateEntry {
  const subject = `network-recreate journal of ${name}`;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error: unknown) {
    throw new InvalidResourceError(subject, [{ path: '', message: `not JSON: ${describeError(error)}` }]);
  }
  const parsed = entrySchema.safeParse(raw);
  if (!parsed.success) throw new InvalidResourceError(subject, toFieldIssues(parsed.error));
  const { newNetworkId, ...rest } = parsed.data;
  return newNetworkId === undefined ? rest : { ...rest, newNetworkId };
}

const SCAN_COUNT = 200;

export interface RedisNetworkRecreateJournalOptions {
  readonly redis: Redis;
  readonly keys: KeySpace;
}

/**
 * {@link NetworkRecreateJournal} on Redis: one JSON string per network. Each save replaces the
 * whole entry, so a reader never sees a half-written one.
 */
export class RedisNetworkRecreateJournal implements NetworkRecreateJournal {
  readonly #redis: Redis;
  readonly #keys: KeySpace;

  constructor(options: RedisNetworkRecreateJournalOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
  }

  async load(name: string): Promise<NetworkRecreateEntry | undefined> {
    const text = await guard(`read the recreate journal of network ${name}`, () =>
      this.#redis.get(this.#keys.networkJournal(name)),
    );
    return text === null ? undefined : parseNetworkRecreateEntry(name, text);
  }

  async save(name: string, entry: NetworkRecreateEntry): Promise<void> {
    await guard(`write the recreate journal of network ${name}`, () =>
      this.#redis.set(this.#keys.networkJournal(name), JSON.stringify(entry)),
    );
  }

  async clear(name: string): Promise<void> {
    await guard(`clear the recreate journal of network ${name}`, () =>
      this.#redis.del(this.#keys.networkJournal(name)),
    );
  }

  async list(): Promise<string[]> {
    // KeySpace spells the key; the pattern is that key with an empty name, glob-escaped, plus `*`.
    const head = this.#keys.networkJournal('');
    const pattern = `${head.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
    return guard('list network-recreate journals', async () => {
      const names = new Set<string>();
      let cursor = '0';
      do {
        const [next, keys] = await this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        cursor = next;
        for (const key of keys) if (key.startsWith(head)) names.add(key.slice(head.length));
      } while (cursor !== '0');
      return [...names].sort();
    });
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

/**
 * A folder archive in progress. Archiving a deleted User's folder lifts its quota, moves the
 * folder and then its e-mail file under `.archive/`, and writes status: a controller killed
 * half-way has forgotten the User (its record is gone), so the archive is written down first, with
 * the archive name chosen, and finished at the next start.
 */
export interface ArchiveEntry {
  readonly user: string;
  /** The HomeFolders resource the folder belongs to. */
  readonly homes: string;
  readonly folder: string;
  /** The name under `<root>/.archive/` chosen before anything moved. */
  readonly target: string;
  /** ISO 8601. */
  readonly startedAt: string;
}

export interface ArchiveJournal {
  save(entry: ArchiveEntry): Promise<void>;
  clear(user: string): Promise<void>;
  /** Archives in progress: the controller finishes each at startup. */
  list(): Promise<ArchiveEntry[]>;
}

const archiveEntrySchema = z.strictObject({
  user: z.string().min(1),
  homes: z.string().min(1),
  folder: z.string().min(1),
  target: z.string().min(1),
  startedAt: z.string(),
});

/** {@link ArchiveJournal} on Redis: one HASH, user → JSON entry; a corrupt entry is an InvalidResourceError. */
export class RedisArchiveJournal implements ArchiveJournal {
  readonly #redis: Redis;
  readonly #keys: KeySpace;

  constructor(options: RedisNetworkRecreateJournalOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
  }

  async save(entry: ArchiveEntry): Promise<void> {
    await guard(`write the archive journal of user ${entry.user}`, () =>
      this.#redis.hset(this.#keys.archiveJournal, entry.user, JSON.stringify(entry)),
    );
  }

  async clear(user: string): Promise<void> {
    await guard(`clear the archive journal of user ${user}`, () =>
      this.#redis.hdel(this.#keys.archiveJournal, user),
    );
  }

  async list(): Promise<ArchiveEntry[]> {
    const all = await guard('list folder archives in progress', () =>
      this.#redis.hgetall(this.#keys.archiveJournal),
    );
    return Object.entries(all).map(([user, text]) => {
      const subject = `archive journal of user ${user}`;
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (error: unknown) {
        throw new InvalidResourceError(subject, [{ path: '', message: `not JSON: ${describeError(error)}` }]);
      }
      const parsed = archiveEntrySchema.safeParse(raw);
      if (!parsed.success) throw new InvalidResourceError(subject, toFieldIssues(parsed.error));
      return parsed.data;
    });
  }
}

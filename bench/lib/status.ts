/** Reads the status hashes the controller writes, as `swarmkeeper status` does, in pipelines. */
import type { Redis } from 'ioredis';

export interface StatusRef {
  readonly kind: string;
  readonly name: string;
}

export async function readStatuses(
  redis: Redis,
  prefix: string,
  refs: readonly StatusRef[],
): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  for (let start = 0; start < refs.length; start += 1000) {
    const batch = refs.slice(start, start + 1000);
    const pipeline = redis.pipeline();
    for (const ref of batch) pipeline.hgetall(`${prefix}:status:${ref.kind}:${ref.name}`);
    const replies = (await pipeline.exec()) ?? [];
    batch.forEach((ref, i) => {
      const reply = replies[i];
      if (reply && !reply[0]) out.set(`${ref.kind}/${ref.name}`, reply[1] as Record<string, string>);
    });
  }
  return out;
}

/** Refs whose status is not Synced and Healthy (a User is done when Synced). */
export async function notReady(redis: Redis, prefix: string, refs: readonly StatusRef[]): Promise<string[]> {
  const statuses = await readStatuses(redis, prefix, refs);
  const missing: string[] = [];
  for (const ref of refs) {
    const key = `${ref.kind}/${ref.name}`;
    const s = statuses.get(key);
    const healthy = ref.kind === 'HomeFolders' || ref.kind === 'User' ? true : s?.health === 'Healthy';
    if (s?.sync !== 'Synced' || !healthy) missing.push(`${key}=${s?.sync ?? '-'}/${s?.health ?? '-'}`);
  }
  return missing;
}

/** Only the sync field, for many refs at once (the scale benchmark's Users). */
export async function countSynced(redis: Redis, prefix: string, refs: readonly StatusRef[]): Promise<number> {
  let synced = 0;
  for (let start = 0; start < refs.length; start += 2000) {
    const batch = refs.slice(start, start + 2000);
    const pipeline = redis.pipeline();
    for (const ref of batch) pipeline.hget(`${prefix}:status:${ref.kind}:${ref.name}`, 'sync');
    const replies = (await pipeline.exec()) ?? [];
    for (const reply of replies) if (reply[1] === 'Synced') synced++;
  }
  return synced;
}

import type { DesiredStore, ResourceStatus } from '../../desired/store.js';
import { recordKey } from '../../controller/desired-cache.js';
import { isKind } from '../../resources/kinds/index.js';
import { renderTable } from '../format.js';
import { EXIT, type CliIo } from '../io.js';

export interface StatusCommandOptions {
  readonly output: 'table' | 'json';
  readonly now?: Date;
}

/** Every desired resource with the status the controller wrote for it, plus the prune guard if held. */
export async function runStatus(
  store: DesiredStore,
  io: CliIo,
  options: StatusCommandOptions,
): Promise<number> {
  const records = await store.list();
  const refs = records.flatMap((r) => {
    const kind = r.ok ? r.resource.kind : r.kind;
    const name = r.ok ? r.resource.metadata.name : r.name;
    return isKind(kind) ? [{ kind, name }] : [];
  });
  const statuses = await store.readStatuses(refs);
  const guard = await store.readGuard();
  const rows = records.map((record) => {
    const key = recordKey(record);
    const status: ResourceStatus = statuses.get(key) ?? {};
    const [kind = '', ...name] = key.split('/');
    // A record that does not validate is Invalid whatever the controller last wrote.
    const sync = record.ok ? (status.sync ?? 'Unknown') : 'Invalid';
    const message = record.ok
      ? (status.message ?? '')
      : record.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    return {
      kind,
      name: name.join('/'),
      sync,
      health: status.health ?? '',
      lastSyncedAt: status.lastSyncedAt,
      message,
      status,
    };
  });

  if (options.output === 'json') {
    io.out(
      JSON.stringify(
        {
          guard: guard ?? null,
          resources: rows.map(({ status: _s, ...row }) => ({
            ...row,
            lastDrift: _s.lastDrift ?? [],
            ...(_s.nodes !== undefined && { nodes: _s.nodes }),
          })),
        },
        null,
        2,
      ),
    );
  } else {
    if (guard?.state === 'held') io.err(`PRUNE GUARD HELD since ${guard.since}: ${guard.reason}`);
    const now = options.now ?? new Date();
    io.out(
      renderTable(
        ['KIND', 'NAME', 'SYNC', 'HEALTH', 'AGE', 'MESSAGE'],
        rows.map((r) => [r.kind, r.name, r.sync, r.health, age(r.lastSyncedAt, now), r.message]),
      ),
    );
    // The per-node volume check of each HomeFolders: one line per node.
    const nodes = rows.flatMap((r) =>
      (r.status.nodes ?? []).map((n) => [`${r.kind}/${r.name}`, n.hostname || n.node, n.state, n.message]),
    );
    if (nodes.length > 0) io.out(`\n${renderTable(['VOLUMES OF', 'NODE', 'STATE', 'MESSAGE'], nodes)}`);
  }
  const healthy = rows.every((r) => r.sync === 'Synced') && guard?.state !== 'held';
  return healthy ? EXIT.ok : EXIT.failed;
}

/** kubectl-style age: 45s, 12m, 3h, 2d. */
export function age(iso: string | undefined, now: Date): string {
  if (!iso) return '-';
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (Number.isNaN(seconds)) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

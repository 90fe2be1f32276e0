/**
 * The status page's HTML, rendered on the server from a {@link StatusSnapshot}: it reads fully
 * without JavaScript; the script (assets.ts) then keeps it current from `/status.json` and draws
 * the live timeline from `/events/stream`. Every value from the store goes through {@link esc}.
 */
import type { LeaderView, ResourceRow, StatusSnapshot, UserUsage } from './snapshot.js';
import type { PruneGuard } from '../../desired/store.js';

export interface PageAssets {
  readonly css: string;
  readonly js: string;
}

/** How often the page polls `/status.json`; the timeline also triggers a refresh. */
export const REFRESH_SECONDS = 3;

export function renderPage(snapshot: StatusSnapshot, assets: PageAssets): string {
  return layout(
    'status',
    assets,
    `<header class="top">
  <div class="brand"><span class="mark" aria-hidden="true"></span>swarmkeeper <span class="prefix" title="Redis key prefix">${esc(snapshot.prefix)}</span></div>
  <div class="leader" id="leader">${renderLeader(snapshot.leader)}</div>
  <div class="live" id="live" data-state="connecting"><span class="dot" aria-hidden="true"></span><span id="live-text">connecting</span></div>
</header>
<div id="guard">${renderGuard(snapshot.guard)}</div>
<div class="summary" id="summary">${renderSummary(snapshot)}</div>
<main class="grid">
  <section class="card resources" aria-labelledby="resources-title">
    <div class="card-head">
      <h2 id="resources-title">Resources</h2>
      <label class="filter"><input type="checkbox" id="only-problems"> only what needs a look</label>
    </div>
    <table id="resources">
      <thead><tr><th>Kind</th><th>Name</th><th>Sync</th><th>Health</th><th title="since the last successful reconcile">Synced</th><th>Message</th></tr></thead>
      <tbody>${snapshot.resources.map(renderRow).join('')}${snapshot.resources.length === 0 ? '<tr class="empty"><td colspan="6">No desired resources under this prefix.</td></tr>' : ''}</tbody>
    </table>
  </section>
  <section class="card timeline" aria-labelledby="timeline-title">
    <div class="card-head"><h2 id="timeline-title">Drifts and repairs</h2><span class="hint">live</span></div>
    <ol id="timeline" aria-live="polite"><li class="empty">Waiting for events…</li></ol>
    <noscript><p class="hint">The live timeline needs JavaScript.</p></noscript>
  </section>
  <section class="card homes" aria-labelledby="homes-title">
    <div class="card-head">
      <h2 id="homes-title">Home folders</h2>
      <div class="sort" role="group" aria-label="Sort home folders">
        <button type="button" data-sort="limit" aria-pressed="true">Nearest limit</button><button type="button" data-sort="used" aria-pressed="false">Most used</button><button type="button" data-sort="name" aria-pressed="false">Name</button>
      </div>
    </div>
    <ul id="users">${renderUsers(snapshot.users)}</ul>
  </section>
</main>
<footer>Updated <time id="updated" datetime="${esc(snapshot.generatedAt)}">${esc(clock(snapshot.generatedAt))}</time> · refreshes every ${REFRESH_SECONDS} s · <a href="/status.json">status.json</a> · <a href="/metrics">metrics</a></footer>`,
  );
}

/** 401: how to get in, without saying anything about the deployment. */
export function renderLogin(assets: PageAssets, rejected: boolean): string {
  return layout(
    'sign in',
    assets,
    `<main class="login card">
  <h1><span class="mark" aria-hidden="true"></span>swarmkeeper</h1>
  <p>${rejected ? 'That token is not valid.' : 'This status page needs the API token.'}</p>
  <form method="get" action="/" autocomplete="off">
    <label for="token">API token</label>
    <input id="token" name="token" type="password" required spellcheck="false">
    <button type="submit">Open</button>
  </form>
  <p class="hint">The token is the one in SWARMKEEPER_API_TOKEN_FILE. It is exchanged for a session cookie and leaves the address bar at once.</p>
</main>`,
  );
}

/** 503 while the store cannot be read; the page tries again by itself. */
export function renderUnavailable(assets: PageAssets): string {
  return layout(
    'unavailable',
    assets,
    `<main class="login card"><h1><span class="mark" aria-hidden="true"></span>swarmkeeper</h1>
<p>The desired-state store cannot be read just now. This page tries again every few seconds.</p></main>`,
    '<meta http-equiv="refresh" content="5">',
  );
}

function layout(title: string, assets: PageAssets, body: string, head = ''): string {
  // The script reads its refresh interval here, so the page and the script cannot disagree on it.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${head}<title>swarmkeeper · ${esc(title)}</title>
<link rel="stylesheet" href="${esc(assets.css)}">
<script src="${esc(assets.js)}" defer></script>
</head>
<body data-refresh-ms="${REFRESH_SECONDS * 1000}">
${body}
</body>
</html>
`;
}

function renderLeader(leader: LeaderView): string {
  const self = `<span class="label">this replica</span> <code>${esc(leader.identity)}</code> <span class="role role-${esc(leader.role)}">${esc(leader.role)}</span>`;
  const sep = '<span class="sep" aria-hidden="true"></span>';
  if (!leader.election) return `${self}${sep}<span class="hint">leader election off: it always acts</span>`;
  const left = leader.ttlMs === null ? '' : ` · ${Math.ceil(leader.ttlMs / 1000)} s left`;
  if (leader.holder === null) return `${self}${sep}<span class="hint">nobody holds the lease</span>`;
  if (leader.holder === leader.identity) {
    return `${self}${sep}<span class="hint" title="lease holder">holds the lease${left}</span>`;
  }
  return `${self}${sep}<span class="label">leader</span> <code title="lease holder">${esc(leader.holder)}</code><span class="hint">${left}</span>`;
}

function renderGuard(guard: PruneGuard | null): string {
  if (guard?.state !== 'held') return '';
  return `<div class="banner" role="alert"><strong>Prune guard held</strong> since ${esc(clock(guard.since))}: ${esc(guard.reason)} (desired ${guard.desiredCount}, before ${guard.previousCount}). Nothing is removed until <code>swarmkeeper prune --confirm</code>.</div>`;
}

function renderSummary(snapshot: StatusSnapshot): string {
  const s = snapshot.summary;
  const chip = (tone: string, n: number, label: string): string =>
    n === 0 && tone !== 'ok' ? '' : `<span class="chip tone-${tone}"><b>${n}</b> ${label}</span>`;
  return [
    chip('ok', s.ok, 'converged'),
    chip('progress', s.progress, 'in progress'),
    chip('bad', s.bad, 'need a look'),
    chip('unknown', s.unknown, 'not reconciled yet'),
    chip('muted', s.muted, 'kept after deletion'),
    `<span class="total">${s.total} resources</span>`,
  ].join('');
}

function renderRow(row: ResourceRow): string {
  return `<tr class="tone-${row.tone}" data-key="${esc(`${row.kind}/${row.name}`)}" data-kind="${esc(row.kind)}" data-name="${esc(row.name)}" data-sync="${esc(row.sync)}" data-health="${esc(row.health ?? '')}" data-tone="${row.tone}">
<td class="kind">${esc(row.kind)}</td><td class="name">${esc(row.name)}</td><td><span class="badge tone-${row.tone}">${esc(row.sync)}</span></td><td>${row.health === null ? '<span class="hint">–</span>' : `<span class="health health-${esc(row.health)}">${esc(row.health)}</span>`}</td><td class="age" title="${esc(row.lastSyncedAt ?? 'never')}">${esc(row.syncedAge)}</td><td class="message">${esc(row.message)}</td></tr>`;
}

function renderUsers(users: readonly UserUsage[]): string {
  if (users.length === 0) return '<li class="empty">No quota reports yet.</li>';
  return users.map(renderUser).join('');
}

function renderUser(user: UserUsage): string {
  const level =
    user.ratio === null ? 'none' : user.ratio >= 0.9 ? 'high' : user.ratio >= 0.75 ? 'mid' : 'low';
  const percent = user.ratio === null ? '' : `${Math.round(user.ratio * 100)}%`;
  const meter =
    user.ratio === null
      ? '<span class="meter-none"></span>'
      : `<meter min="0" max="1" low="0.75" high="0.9" optimum="0" value="${Math.min(user.ratio, 1).toFixed(4)}"></meter>`;
  return `<li class="user level-${level}" data-name="${esc(user.name)}" data-used="${user.usedBytes}" data-ratio="${user.ratio ?? -1}"><span class="user-name">${esc(user.name)}</span>${meter}<span class="user-use">${esc(user.usedText)} <span class="hint">${user.ratio === null ? 'used, no limit' : `of ${esc(user.quotaText)}`}</span></span><span class="user-pct">${percent}</span></li>`;
}

/** `2026-11-01 14:03:22 UTC` from ISO 8601; the script shows local time once it runs. */
function clock(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Escapes text for HTML element content and double-quoted attributes. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

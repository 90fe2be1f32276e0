/**
 * The status page's stylesheet and script, served from memory as `/assets/dashboard.css` and
 * `/assets/dashboard.js` (same origin, so the Content-Security-Policy allows no inline code).
 * Plain CSS and ES2020 in strings: no build step, and `tsc` carries them into dist/.
 *
 * The script draws only from `/status.json` (the same snapshot the server rendered) and the
 * events stream, and builds every node with textContent: no value is ever parsed as HTML.
 */
import { createHash } from 'node:crypto';

export const DASHBOARD_CSS = String.raw`
:root {
  --bg: #f5f6f8; --card: #fff; --line: #e2e5e9; --text: #1f2328; --muted: #656d76;
  --ok: #1a7f37; --ok-bg: #dcf5e3; --progress: #8a5a00; --progress-bg: #fff4c2;
  --bad: #c4232d; --bad-bg: #ffe6e4; --grey: #57606a; --grey-bg: #eceff2; --accent: #0b5cad;
  color-scheme: light;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, "DejaVu Sans Mono", monospace; }
a { color: var(--accent); }
.hint { color: var(--muted); }
.mark { display: inline-block; width: 12px; height: 12px; margin-right: 8px; border-radius: 3px;
  background: linear-gradient(135deg, #1a7f37, #0b5cad); vertical-align: -1px; }
.top { display: flex; align-items: center; gap: 20px; flex-wrap: wrap; padding: 12px 24px;
  background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 650; font-size: 16px; }
.prefix { margin-left: 6px; padding: 1px 7px; border-radius: 10px; background: var(--grey-bg);
  color: var(--grey); font-weight: 500; font-size: 12px; }
.leader { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; color: var(--text); }
.leader .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.leader .sep { width: 1px; height: 16px; background: var(--line); margin: 0 6px; }
.role { padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.role-leader { background: var(--ok-bg); color: var(--ok); }
.role-follower { background: var(--grey-bg); color: var(--grey); }
.role-stopped { background: var(--bad-bg); color: var(--bad); }
.live { margin-left: auto; display: flex; align-items: center; gap: 6px; color: var(--muted); font-size: 12px; }
.live .dot { width: 8px; height: 8px; border-radius: 50%; background: #adb5bd; }
.live[data-state="live"] .dot { background: var(--ok); box-shadow: 0 0 0 3px var(--ok-bg); }
.live[data-state="reconnecting"] .dot, .live[data-state="signed-out"] .dot { background: var(--bad); }
.banner { margin: 16px 24px 0; padding: 10px 14px; border-radius: 8px; background: var(--bad-bg);
  color: #82071e; border: 1px solid #ffc1bc; }
.summary { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; padding: 16px 24px 0; }
.chip { padding: 3px 10px; border-radius: 14px; font-size: 13px; }
.chip b { font-weight: 650; }
.summary .total { color: var(--muted); margin-left: 4px; }
.grid { display: grid; gap: 16px; padding: 16px 24px 8px;
  grid-template-columns: minmax(0, 1.75fr) minmax(300px, 1fr); grid-template-rows: auto 1fr;
  grid-template-areas: "res tl" "homes tl"; align-items: start; }
.resources { grid-area: res; overflow-x: auto; } .timeline { grid-area: tl; } .homes { grid-area: homes; }
@media (max-width: 980px) { .grid { grid-template-columns: 1fr; grid-template-rows: none; grid-template-areas: "res" "tl" "homes"; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; min-width: 0; }
.card-head { display: flex; align-items: center; justify-content: space-between; gap: 12px; margin-bottom: 8px; }
h2 { margin: 0; font-size: 15px; font-weight: 650; }
.filter { color: var(--muted); font-size: 13px; display: flex; gap: 6px; align-items: center; }
table { width: 100%; border-collapse: collapse; }
th { text-align: left; font-weight: 600; font-size: 12px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; padding: 6px 8px; border-bottom: 1px solid var(--line); }
td { padding: 7px 8px; border-bottom: 1px solid #eef0f2; vertical-align: top; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr td:first-child { border-left: 3px solid transparent; }
tr.tone-ok td:first-child { border-left-color: var(--ok); }
tr.tone-progress td:first-child { border-left-color: #d4a72c; }
tr.tone-bad td:first-child { border-left-color: var(--bad); }
tr.tone-bad { background: #fff8f7; }
tr.tone-muted td:first-child, tr.tone-unknown td:first-child { border-left-color: #afb8c1; }
tr[hidden] { display: none; }
td.kind { color: var(--muted); white-space: nowrap; }
td.name { font-weight: 550; white-space: nowrap; }
td.age { color: var(--muted); white-space: nowrap; }
td.message { color: #424a53; word-break: break-word; }
tr.empty td { color: var(--muted); text-align: center; padding: 18px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.tone-ok.badge, .chip.tone-ok { background: var(--ok-bg); color: var(--ok); }
.tone-progress.badge, .chip.tone-progress { background: var(--progress-bg); color: var(--progress); }
.tone-bad.badge, .chip.tone-bad { background: var(--bad-bg); color: var(--bad); }
.tone-muted.badge, .tone-unknown.badge, .chip.tone-muted, .chip.tone-unknown { background: var(--grey-bg); color: var(--grey); }
.health { font-size: 13px; white-space: nowrap; }
.health::before { content: ""; display: inline-block; width: 7px; height: 7px; border-radius: 50%; margin-right: 6px; background: #afb8c1; vertical-align: 1px; }
.health-Healthy::before { background: var(--ok); }
.health-Progressing::before { background: #d4a72c; }
.health-Degraded::before, .health-Missing::before { background: var(--bad); }
#timeline { list-style: none; margin: 0; padding: 0; max-height: calc(100vh - 190px); min-height: 120px; overflow-y: auto; }
.ev { position: relative; padding: 8px 4px 8px 18px; border-bottom: 1px solid #eef0f2; }
.ev:last-child { border-bottom: 0; }
.ev::before { content: ""; position: absolute; left: 3px; top: 14px; width: 8px; height: 8px; border-radius: 50%; background: #afb8c1; }
.ev-drift::before { background: #d4a72c; } .ev-repair::before { background: var(--ok); } .ev-failure::before { background: var(--bad); }
.ev.fresh { animation: fresh 2.4s ease-out; }
@keyframes fresh { from { background: #fff4c2; } to { background: transparent; } }
.ev-head { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.ev-time { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.ev-msg { font-weight: 600; }
.ev-drift .ev-msg { color: var(--progress); } .ev-repair .ev-msg { color: var(--ok); } .ev-failure .ev-msg { color: var(--bad); }
.ev-ref { word-break: break-all; }
.ev-dur { color: var(--muted); font-size: 12px; margin-left: auto; }
.ev-details { margin: 4px 0 0; padding: 0; list-style: none; font-size: 12.5px; color: #424a53; }
.ev-details li { word-break: break-word; }
.ev-details .arrow { color: var(--muted); margin: 0 4px; }
#timeline .empty, #users .empty { color: var(--muted); padding: 12px 4px; }
.sort { display: inline-flex; border: 1px solid var(--line); border-radius: 7px; overflow: hidden; }
.sort button { border: 0; background: #fff; padding: 4px 10px; font: inherit; font-size: 12.5px; color: var(--muted); cursor: pointer; }
.sort button + button { border-left: 1px solid var(--line); }
.sort button[aria-pressed="true"] { background: var(--grey-bg); color: var(--text); font-weight: 600; }
#users { list-style: none; margin: 0; padding: 0; }
.user { display: grid; grid-template-columns: minmax(90px, 1.1fr) minmax(120px, 2fr) minmax(130px, auto) 44px;
  gap: 12px; align-items: center; padding: 6px 0; border-bottom: 1px solid #eef0f2; }
.user:last-child { border-bottom: 0; }
.user-name { font-weight: 550; word-break: break-all; }
.user-use { font-size: 13px; white-space: nowrap; }
.user-pct { text-align: right; font-weight: 600; font-variant-numeric: tabular-nums; }
.level-high .user-pct { color: var(--bad); } .level-mid .user-pct { color: var(--progress); }
meter { width: 100%; height: 10px; -webkit-appearance: none; appearance: none; }
meter::-webkit-meter-bar { background: var(--grey-bg); border: 0; border-radius: 5px; height: 10px; }
meter::-webkit-meter-optimum-value { background: #2da44e; border-radius: 5px; }
meter::-webkit-meter-suboptimum-value { background: #d4a72c; border-radius: 5px; }
meter::-webkit-meter-even-less-good-value { background: var(--bad); border-radius: 5px; }
meter::-moz-meter-bar { border-radius: 5px; }
.meter-none { height: 10px; border-radius: 5px; background: repeating-linear-gradient(45deg, var(--grey-bg) 0 6px, #f6f7f8 6px 12px); }
footer { padding: 4px 24px 20px; color: var(--muted); font-size: 12px; }
.login { max-width: 420px; margin: 12vh auto; padding: 24px 28px; }
.login h1 { font-size: 18px; margin: 0 0 8px; }
.login form { display: grid; gap: 8px; margin: 16px 0; }
.login input { font: inherit; padding: 7px 10px; border: 1px solid var(--line); border-radius: 6px; }
.login button { font: inherit; padding: 7px 10px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
`;

export const DASHBOARD_JS = String.raw`
(function () {
  'use strict';
  var REFRESH_MS = Number(document.body.getAttribute('data-refresh-ms')) || 3000;
  var MAX_EVENTS = 200;
  var sortMode = 'limit';
  var onlyProblems = false;
  var lastUsers = null;
  var timer = null;
  var pending = null;
  var signedOut = false;
  var ready = false;

  function $(id) { return document.getElementById(id); }
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'text') el.textContent = String(v);
      else if (k === 'className') el.className = v;
      else el.setAttribute(k, String(v));
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return el;
  }
  function replaceChildren(el, nodes) {
    while (el.firstChild) el.removeChild(el.firstChild);
    nodes.forEach(function (n) { el.appendChild(n); });
  }
  function localTime(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }
  function setLive(state, text) {
    var live = $('live');
    if (!live) return;
    live.setAttribute('data-state', state);
    $('live-text').textContent = text;
  }

  function renderLeader(l) {
    var self = [h('span', { className: 'label', text: 'this replica' }), h('code', { text: l.identity }),
      h('span', { className: 'role role-' + l.role, text: l.role }), h('span', { className: 'sep', 'aria-hidden': 'true' })];
    var left = l.ttlMs === null ? '' : ' \u00b7 ' + Math.ceil(l.ttlMs / 1000) + ' s left';
    if (!l.election) return self.concat([h('span', { className: 'hint', text: 'leader election off: it always acts' })]);
    if (l.holder === null) return self.concat([h('span', { className: 'hint', text: 'nobody holds the lease' })]);
    if (l.holder === l.identity) return self.concat([h('span', { className: 'hint', title: 'lease holder', text: 'holds the lease' + left })]);
    return self.concat([h('span', { className: 'label', text: 'leader' }), h('code', { title: 'lease holder', text: l.holder }),
      h('span', { className: 'hint', text: left })]);
  }
  function renderGuard(g) {
    if (!g || g.state !== 'held') return [];
    return [h('div', { className: 'banner', role: 'alert' }, [h('strong', { text: 'Prune guard held' }),
      ' since ' + localTime(g.since) + ': ' + g.reason + ' (desired ' + g.desiredCount + ', before ' + g.previousCount +
      '). Nothing is removed until ', h('code', { text: 'swarmkeeper prune --confirm' }), '.'])];
  }
  function renderSummary(s) {
    var chips = [['ok', 'converged'], ['progress', 'in progress'], ['bad', 'need a look'],
      ['unknown', 'not reconciled yet'], ['muted', 'kept after deletion']];
    var nodes = [];
    chips.forEach(function (c) {
      var n = s[c[0]];
      if (n === 0 && c[0] !== 'ok') return;
      nodes.push(h('span', { className: 'chip tone-' + c[0] }, [h('b', { text: n }), ' ' + c[1]]));
    });
    nodes.push(h('span', { className: 'total', text: s.total + ' resources' }));
    return nodes;
  }
  function renderRow(r) {
    return h('tr', { className: 'tone-' + r.tone, 'data-key': r.kind + '/' + r.name, 'data-kind': r.kind,
      'data-name': r.name, 'data-sync': r.sync, 'data-health': r.health || '', 'data-tone': r.tone }, [
      h('td', { className: 'kind', text: r.kind }),
      h('td', { className: 'name', text: r.name }),
      h('td', null, [h('span', { className: 'badge tone-' + r.tone, text: r.sync })]),
      h('td', null, [r.health === null ? h('span', { className: 'hint', text: '\u2013' })
        : h('span', { className: 'health health-' + r.health, text: r.health })]),
      h('td', { className: 'age', title: r.lastSyncedAt || 'never', text: r.syncedAge }),
      h('td', { className: 'message', text: r.message })
    ]);
  }
  function renderUser(u) {
    var level = u.ratio === null ? 'none' : u.ratio >= 0.9 ? 'high' : u.ratio >= 0.75 ? 'mid' : 'low';
    var meter = u.ratio === null ? h('span', { className: 'meter-none' })
      : h('meter', { min: 0, max: 1, low: 0.75, high: 0.9, optimum: 0, value: Math.min(u.ratio, 1).toFixed(4) });
    return h('li', { className: 'user level-' + level, 'data-name': u.name, 'data-used': u.usedBytes,
      'data-ratio': u.ratio === null ? -1 : u.ratio }, [
      h('span', { className: 'user-name', text: u.name }), meter,
      h('span', { className: 'user-use' }, [u.usedText + ' ', h('span', { className: 'hint', text: u.ratio === null ? 'used, no limit' : 'of ' + u.quotaText })]),
      h('span', { className: 'user-pct', text: u.ratio === null ? '' : Math.round(u.ratio * 100) + '%' })
    ]);
  }

  function applyFilter() {
    var rows = document.querySelectorAll('#resources tbody tr[data-key]');
    Array.prototype.forEach.call(rows, function (tr) {
      tr.hidden = onlyProblems && tr.getAttribute('data-tone') === 'ok';
    });
  }
  function sortUsers() {
    var list = $('users');
    if (!list) return;
    var items = Array.prototype.slice.call(list.querySelectorAll('li.user'));
    var num = function (li, a) { return Number(li.getAttribute(a)); };
    items.sort(function (a, b) {
      var an = a.getAttribute('data-name'), bn = b.getAttribute('data-name');
      if (sortMode === 'name') return an < bn ? -1 : an > bn ? 1 : 0;
      if (sortMode === 'limit' && num(a, 'data-ratio') !== num(b, 'data-ratio')) return num(b, 'data-ratio') - num(a, 'data-ratio');
      if (num(a, 'data-used') !== num(b, 'data-used')) return num(b, 'data-used') - num(a, 'data-used');
      return an < bn ? -1 : an > bn ? 1 : 0;
    });
    items.forEach(function (li) { list.appendChild(li); });
    Array.prototype.forEach.call(document.querySelectorAll('.sort button'), function (b) {
      b.setAttribute('aria-pressed', String(b.getAttribute('data-sort') === sortMode));
    });
  }

  function render(s) {
    replaceChildren($('leader'), renderLeader(s.leader));
    replaceChildren($('guard'), renderGuard(s.guard));
    replaceChildren($('summary'), renderSummary(s.summary));
    var rows = s.resources.map(renderRow);
    if (rows.length === 0) rows = [h('tr', { className: 'empty' }, [h('td', { colspan: 6, text: 'No desired resources under this prefix.' })])];
    replaceChildren(document.querySelector('#resources tbody'), rows);
    applyFilter();
    var users = JSON.stringify(s.users);
    if (users !== lastUsers) {
      lastUsers = users;
      replaceChildren($('users'), s.users.length ? s.users.map(renderUser) : [h('li', { className: 'empty', text: 'No quota reports yet.' })]);
      sortUsers();
    }
    var updated = $('updated');
    updated.setAttribute('datetime', s.generatedAt);
    updated.textContent = localTime(s.generatedAt);
  }

  function refresh() {
    if (signedOut) return;
    if (pending) return;
    pending = fetch('/status.json', { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (res.status === 401) {
          signedOut = true;
          setLive('signed-out', 'session ended: reload with ?token=');
          return null;
        }
        if (!res.ok) throw new Error('status ' + res.status);
        return res.json();
      })
      .then(function (s) { if (s) render(s); })
      .catch(function () { setLive('reconnecting', 'status unavailable, retrying'); })
      .then(function () { pending = null; });
  }
  function refreshSoon() {
    clearTimeout(timer);
    timer = setTimeout(function () { refresh(); schedule(); }, 300);
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(function () { refresh(); schedule(); }, REFRESH_MS);
  }

  function renderEvent(e) {
    var ref = e.kind ? e.kind + '/' + e.name : e.name;
    var head = h('div', { className: 'ev-head' }, [
      h('time', { className: 'ev-time', datetime: e.ts, title: e.ts, text: localTime(e.ts) }),
      h('span', { className: 'ev-msg', text: e.msg }),
      h('span', { className: 'ev-ref', text: ref }),
      e.durationMs !== undefined ? h('span', { className: 'ev-dur', text: Math.round(e.durationMs) + ' ms' }) : null
    ]);
    var details = [];
    (e.drift || []).forEach(function (d) {
      details.push(h('li', { title: 'found \u2192 desired' }, [h('code', { text: d.path }), ' ',
        h('span', { className: 'hint', text: d.actual }), h('span', { className: 'arrow', text: '\u2192' }),
        h('span', { text: d.desired })]));
    });
    if (e.action && e.action.length) details.push(h('li', { className: 'hint', text: 'action: ' + e.action.join(', ') }));
    if (e.message) details.push(h('li', { text: e.message }));
    return h('li', { className: 'ev ev-' + e.tone + (ready ? ' fresh' : ''), 'data-id': e.id, 'data-kind': e.kind,
      'data-name': e.name, 'data-msg': e.msg, 'data-tone': e.tone },
      [head, details.length ? h('ul', { className: 'ev-details' }, details) : null]);
  }
  function addEvent(e) {
    var list = $('timeline');
    var empty = list.querySelector('.empty');
    if (empty) list.removeChild(empty);
    if (list.querySelector('[data-id="' + e.id + '"]')) return;
    list.insertBefore(renderEvent(e), list.firstChild);
    while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
  }
  function connect() {
    if (!window.EventSource || signedOut) return;
    var source = new EventSource('/events/stream');
    source.onopen = function () { setLive('live', 'live'); };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        setLive('reconnecting', 'timeline closed, retrying');
        setTimeout(connect, 5000);
      } else setLive('reconnecting', 'reconnecting');
      refresh();
    };
    source.addEventListener('ready', function () {
      ready = true;
      var list = $('timeline');
      var empty = list.querySelector('.empty');
      if (empty) empty.textContent = 'No drifts or repairs yet.';
    });
    source.onmessage = function (m) {
      try { addEvent(JSON.parse(m.data)); } catch (err) { return; }
      if (ready) refreshSoon();
    };
  }

  function start() {
    var box = $('only-problems');
    if (!box) return;
    box.addEventListener('change', function () { onlyProblems = box.checked; applyFilter(); });
    Array.prototype.forEach.call(document.querySelectorAll('.sort button'), function (b) {
      b.addEventListener('click', function () { sortMode = b.getAttribute('data-sort'); sortUsers(); });
    });
    var updated = $('updated');
    updated.textContent = localTime(updated.getAttribute('datetime'));
    connect();
    schedule();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
`;

/** Cache-busting suffix: a page never pairs with a script from another version. */
const version = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 10);

export const ASSET_PATHS = {
  css: `/assets/dashboard.css?v=${version(DASHBOARD_CSS)}`,
  js: `/assets/dashboard.js?v=${version(DASHBOARD_JS)}`,
} as const;

// Gateway health: every gateway the caller may see — online (from its retained status), last seen,
// outbox backlog, version — worst first; for HQ also what ingest refused.

import * as api from '../api.js';
import { el, int, ago, dateTime, table } from '../format.js';
import { pageHead, card, kpi, panel } from '../ui.js';

export const title = 'Gateways';

/** Silence longer than this, while the last status said online, is flagged. */
const SILENT_MS = 10 * 60 * 1000;

export function health(g, now = Date.now()) {
  if (g.online === false) return { key: 'offline', text: 'offline', cls: 'bad', rank: 0 };
  if (g.online == null) return { key: 'unknown', text: 'no status yet', cls: 'unknown', rank: 2 };
  if (g.last_seen_ms == null || now - g.last_seen_ms > SILENT_MS) return { key: 'silent', text: 'silent', cls: 'bad', rank: 1 };
  return { key: 'online', text: 'online', cls: 'ok', rank: 3 };
}

export async function render(root, ctx) {
  const [gws, stores] = await Promise.all([api.get('/api/v1/gateways'), api.get('/api/v1/stores').catch(() => [])]);
  const names = new Map(stores.map((s) => [s.id, s.name]));
  const now = Date.now();
  const rows = gws.map((g) => ({ ...g, health: health(g, now), store_name: names.get(g.store) || g.store }))
    .sort((a, b) => a.health.rank - b.health.rank || (b.backlog ?? 0) - (a.backlog ?? 0) || a.gateway.localeCompare(b.gateway));
  const count = (k) => rows.filter((r) => r.health.key === k).length;
  const backlog = rows.reduce((a, r) => a + (r.backlog || 0), 0);
  root.append(pageHead('Gateways', `${rows.length} gateways in ${new Set(rows.map((r) => r.store)).size} stores`));
  root.append(el('div', { class: 'kpis' },
    kpi('total', 'Gateways', rows.length, int(rows.length)),
    kpi('online', 'Online', count('online'), int(count('online'))),
    kpi('offline', 'Offline', count('offline'), int(count('offline')), 'their last will or status said so'),
    kpi('silent', 'Silent', count('silent'), int(count('silent')), 'online, but nothing heard for 10 min'),
    kpi('backlog', 'Events waiting', backlog, int(backlog), 'in gateway outboxes, as last reported')));
  const grid = el('div', { class: 'grid' });
  grid.append(card('Gateways', 12, table([
    { key: 'gateway', label: 'Gateway' },
    { key: 'store_name', label: 'Store', cell: (g) => el('a', { href: `#/store/${encodeURIComponent(g.store)}` }, g.store_name) },
    { key: 'health', label: 'Status', cell: (g) => el('span', { class: `pill ${g.health.cls}`, dataset: { health: g.health.key } }, g.health.text) },
    { key: 'last_seen_ms', label: 'Last seen', cell: (g) => el('span', { title: dateTime(g.last_seen_ms), dataset: { value: g.last_seen_ms ?? '' } }, ago(g.last_seen_ms, now)) },
    { key: 'backlog', label: 'Backlog', num: true, format: int },
    { key: 'version', label: 'Version' },
    { key: 'registered', label: 'Registered', cell: (g) => (g.registered ? 'yes' : 'claimed on first message (demo)') },
  ], rows, { id: 'gateways-table', empty: 'No gateway has been registered or heard from yet.' })));
  if (ctx.me.role === 'hq') {
    grid.append(card('Refused messages', 12, await panel('Dead letters', async () => {
      const d = await api.get('/api/v1/dead-letters/summary');
      if (!d.total) return el('p', { class: 'empty', dataset: { deadLetters: 0 } }, 'Ingest has refused nothing.');
      return el('div', {},
        el('p', {}, `${int(d.total)} messages or events refused and kept for inspection (table dead_letters).`),
        table([
          { key: 'reason', label: 'Reason', cell: (r) => el('code', {}, r.reason) },
          { key: 'count', label: 'Count', num: true, format: int },
          { key: 'last_ms', label: 'Latest', cell: (r) => dateTime(r.last_ms) },
        ], d.by_reason, { id: 'dead-letters-table' }));
    })));
  }
  root.append(grid);
}

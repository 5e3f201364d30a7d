// Overview: the chain's (or a region's, or the manager's store's) footfall trends — visitors,
// passers-by, capture rate, dwell buckets, the traffic index — and every store side by side.

import * as api from '../api.js';
import { el, int, pct, duration, isoDay, dataTable, table } from '../format.js';
import { lineChart, stackedBars, hBars, COLORS } from '../charts.js';
import { pageHead, card, kpi, periodForm, panel, problem } from '../ui.js';

export const title = 'Overview';

export const DWELL_BUCKETS = [
  ['lt_5m', '< 5 min'],
  ['5_20m', '5–20 min'],
  ['20_60m', '20–60 min'],
  ['1_6h', '1–6 h'],
  ['6h_plus', '6 h +'],
];

const LOYALTY = [
  ['first_time', 'First time'],
  ['daily', 'Daily (≥ 5 of 7 days)'],
  ['weekly', 'Weekly (≥ 2 of 4 weeks)'],
  ['occasional', 'Occasional'],
];

/** Short x labels: "2026-11-03" → "Nov 3", "2026-11-03T14:00+01:00" → "14:00". */
export function shortPeriod(p) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}))?/.exec(p);
  if (!m) return p;
  if (m[4] != null) return `${m[4]}:00`;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${months[Number(m[2]) - 1]} ${Number(m[3])}`;
}

/** A footfall bucket (or total) flattened for tables: period, passers-by, traffic index. */
export function flat(b) {
  return { ...b, period: b.local, traffic_index: b.traffic?.index ?? null };
}

/** KPI tiles from footfall totals (`total` of GET /api/v1/footfall). */
export function footfallKpis(t) {
  return el('div', { class: 'kpis' },
    kpi('visitors', 'Visitors', t.visitors, int(t.visitors), 'visits of at least the minimum visit time'),
    kpi('passersby', 'Passers-by', t.passersby, int(t.passersby), 'came near, or in only briefly'),
    kpi('capture_rate', 'Capture rate', t.capture_rate, pct(t.capture_rate), 'visitors ÷ (visitors + passers-by)'),
    kpi('engaged', 'Engaged visits', t.engaged, int(t.engaged), 'visitor visits of 10 min or more'),
    kpi('mean_dwell_s', 'Mean dwell', t.mean_dwell_s, duration(t.mean_dwell_s), 'of visitors'),
    kpi('traffic_index', 'Traffic index', t.traffic?.index, int(t.traffic?.index), 'randomized devices, device-minutes: not people'));
}

/** Trend cards from a footfall response (shared with the store page). */
export function footfallCards(f, { scopeLabel }) {
  const s = (f.buckets || []).map(flat);
  const labels = s.map((r) => r.period);
  const xFormat = shortPeriod;
  const cols = [
    { key: 'period', label: f.granularity || 'period' },
    { key: 'visitors', label: 'Visitors', num: true, format: int },
    { key: 'passersby', label: 'Passers-by', num: true, format: int },
    { key: 'capture_rate', label: 'Capture rate', num: true, format: (v) => pct(v) },
    { key: 'engaged', label: 'Engaged', num: true, format: int },
    { key: 'mean_dwell_s', label: 'Mean dwell', num: true, format: duration },
    { key: 'traffic_index', label: 'Traffic index', num: true, format: int },
  ];
  const dwellRows = s.map((r) => ({ period: r.period, ...(r.dwell || {}) }));
  // The last period may still be running (today): drawn dashed / pale, and said so.
  const last = s[s.length - 1];
  const partial = last?.end_ms != null && last.end_ms > Date.now();
  const sofar = partial ? el('p', { class: 'note', dataset: { partial: last.period } }, `${shortPeriod(last.period)} is not over yet: its figures are so far (dashed).`) : null;
  const dwellCols = [{ key: 'period', label: f.granularity || 'period' }, ...DWELL_BUCKETS.map(([k, l]) => ({ key: k, label: l, num: true, format: int }))];
  return [
    card('Visitors and passers-by', 8,
      lineChart({
        labels, xFormat, partial, width: 820, label: `Visitors and passers-by per ${f.granularity}, ${scopeLabel}`,
        series: [
          { name: 'Visitors', values: s.map((r) => r.visitors), color: COLORS.visitors },
          { name: 'Passers-by', values: s.map((r) => r.passersby), color: COLORS.passers },
        ],
      }),
      sofar,
      dataTable('Table of these figures', cols, s, { id: 'footfall-table' })),
    card('Capture rate', 4,
      lineChart({
        labels, xFormat, partial, height: 250, width: 390, yMax: 1, yFormat: (v) => pct(v, 0),
        label: `Capture rate per ${f.granularity}, ${scopeLabel}`,
        series: [{ name: 'Capture rate', values: s.map((r) => r.capture_rate), color: COLORS.capture }],
      }),
      el('p', { class: 'note' }, 'Share of devices that came in, of all that came near.')),
    card('Dwell time', 8,
      stackedBars({
        labels, xFormat, partial, width: 820, label: `Visits by dwell time per ${f.granularity}, ${scopeLabel}`,
        stacks: DWELL_BUCKETS.map(([k, l], i) => ({ name: l, values: s.map((r) => r.dwell?.[k] ?? 0), color: COLORS.dwell[i] })),
      }),
      dataTable('Table of visits by dwell time', dwellCols, dwellRows)),
    card('Traffic index', 4,
      lineChart({
        labels, xFormat, partial, height: 250, width: 390,
        label: `Traffic index per ${f.granularity}, ${scopeLabel}`,
        series: [{ name: 'Traffic index', values: s.map((r) => r.traffic_index), color: COLORS.traffic }],
      }),
      el('p', { class: 'note' }, 'Phones with randomized addresses can’t be told apart over time: they are counted as device-minutes, an index of traffic, never as visitors. Compare a store with itself over time.')),
  ];
}

function loyaltyCard(t) {
  if (!t.loyalty) return null;
  const rows = LOYALTY.map(([k, l]) => ({ key: k, label: l, value: t.loyalty[k] ?? 0 }));
  return card('Loyalty', 4,
    hBars({ rows, label: 'Visitors by loyalty class', width: 390 }),
    el('p', { class: 'note' }, 'Stable and consented ids only; anonymous devices rotate daily.'),
    dataTable('Table', [{ key: 'label', label: 'Class' }, { key: 'value', label: 'Visitors', num: true, format: int }], rows));
}

/** `day` (YYYY-MM-DD) plus `n` days. */
export function addDays(day, n) {
  return new Date(Date.parse(day) + n * 86400000).toISOString().slice(0, 10);
}

/**
 * The default period of a scope ({store} or {region}; neither: the chain): 28 days (hours: 2 days,
 * weeks: 12 weeks) ending on the last day with footfall (GET /api/v1/footfall/extent), and starting
 * no earlier than the first — so a chain with a week of data opens on that week, not on three empty
 * ones. Without data (or a server that can't say): the days up to today, in the browser's calendar.
 */
export async function defaultPeriod(granularity = 'day', scope = {}) {
  const days = granularity === 'hour' ? 2 : granularity === 'week' ? 84 : 28;
  const extent = await api.get('/api/v1/footfall/extent', scope).catch(() => ({}));
  const to = extent.last || isoDay(new Date());
  let from = addDays(to, 1 - days);
  if (extent.first && extent.first > from) from = extent.first;
  return { from, to };
}

/** A store's totals (of GET /api/v1/footfall/stores) show nothing a gateway reported. */
export function noGatewayData(t) {
  return !t.visits && !t.static_visits && !t.traffic?.counted_minutes && !t.traffic?.randomized_visits
    && !t.door?.entered && !t.door?.exited && !t.app_presence_minutes;
}

/** Stores listed before "show all". */
export const TOP_STORES = 10;

/** The stores table: those with data by visitors (most first), then those without; the top ten
 * shown, a button for the rest. */
function storesTable(r, names) {
  const rows = (r.stores || []).map((s) => ({
    ...s.total, store: s.store, name: s.name || names.get(s.store) || s.store,
    traffic_index: s.total.traffic?.index, nodata: noGatewayData(s.total),
  }));
  rows.sort((a, b) => a.nodata - b.nodata || b.visitors - a.visitors || (b.traffic_index ?? 0) - (a.traffic_index ?? 0));
  const withData = rows.filter((x) => !x.nodata).length;
  const t = table([
    { key: 'name', label: 'Store', cell: (s) => el('a', { href: `#/store/${encodeURIComponent(s.store)}` }, s.name) },
    { key: 'visitors', label: 'Visitors', num: true, format: int },
    { key: 'passersby', label: 'Passers-by', num: true, format: int },
    { key: 'capture_rate', label: 'Capture rate', num: true, format: (v) => pct(v) },
    { key: 'engaged', label: 'Engaged', num: true, format: int },
    { key: 'mean_dwell_s', label: 'Mean dwell', num: true, format: duration },
    { key: 'traffic_index', label: 'Traffic index', num: true, format: int },
  ], rows, {
    id: 'stores-table',
    caption: `${rows.length > TOP_STORES ? `Top ${TOP_STORES} of ${rows.length} stores` : `${rows.length} stores`} by visitors, ${r.from} to ${r.to}`,
    note: (s) => (s.nodata ? 'no gateway data in this period' : null),
  });
  const note = el('p', { class: 'note' }, withData === rows.length
    ? `Every store has gateway data in this period.`
    : `${int(withData)} of ${int(rows.length)} stores have gateway data in this period; the others have no gateway yet, or it sent nothing.`);
  if (rows.length <= TOP_STORES) return el('div', {}, t, note);
  const trs = [...t.querySelectorAll('tbody tr')];
  const caption = t.querySelector('caption');
  const button = el('button', { type: 'button', class: 'link', 'aria-controls': 'stores-table', 'aria-expanded': 'false', dataset: { toggle: 'stores' } });
  const show = (all) => {
    trs.forEach((tr, i) => { tr.hidden = !all && i >= TOP_STORES; });
    button.setAttribute('aria-expanded', String(all));
    button.textContent = all ? `Show the top ${TOP_STORES} only` : `Show all ${int(rows.length)} stores`;
    caption.textContent = `${all ? `All ${rows.length} stores` : `Top ${TOP_STORES} of ${rows.length} stores`} by visitors, ${r.from} to ${r.to}`;
  };
  button.addEventListener('click', () => show(button.getAttribute('aria-expanded') !== 'true'));
  show(false);
  return el('div', {}, t, el('div', { class: 'table-foot' }, button, note));
}

export async function render(root, ctx) {
  const p = ctx.params;
  const manager = ctx.me.role === 'manager';
  const query = {
    from: p.get('from'), to: p.get('to'), granularity: p.get('granularity') || 'day',
    store: manager ? ctx.me.store : p.get('store'), region: manager ? null : p.get('region'),
  };
  if (!query.from || !query.to) {
    Object.assign(query, await defaultPeriod(query.granularity, { store: query.store, region: query.region }));
  }
  const [stores, footfall] = await Promise.all([
    api.get('/api/v1/stores').catch(() => []),
    api.get('/api/v1/footfall', query).catch((e) => e),
  ]);
  const names = new Map(stores.map((s) => [s.id, s.name]));
  const scopeLabel = query.store ? names.get(query.store) || query.store : query.region ? `region ${query.region}` : 'all stores';

  const extra = [];
  if (!manager) {
    const regions = [...new Set(stores.map((s) => s.region).filter(Boolean))].sort();
    const sel = el('select', { name: 'scope' },
      el('option', { value: '' }, 'All stores'),
      regions.length ? el('optgroup', { label: 'Regions' }, regions.map((r) => el('option', { value: `region:${r}`, selected: query.region === r }, r))) : null,
      el('optgroup', { label: 'Stores' }, stores.map((s) => el('option', { value: `store:${s.id}`, selected: query.store === s.id }, s.name))));
    extra.push(el('label', {}, 'Scope', sel));
  }
  const f = footfall instanceof Error ? null : footfall;
  const form = periodForm({
    navigate: (d) => {
      const [kind, id] = (d.scope || '').split(':');
      ctx.navigate({ from: d.from, to: d.to, granularity: d.granularity, store: kind === 'store' ? id : null, region: kind === 'region' ? id : null });
    },
  }, { from: f?.from ?? query.from, to: f?.to ?? query.to, granularity: query.granularity, extra });

  root.append(pageHead(manager ? `${scopeLabel}: overview` : 'Chain overview',
    f ? `${scopeLabel} · ${f.from} to ${f.to} · per ${f.granularity}` : scopeLabel, form));
  if (!f) {
    root.append(problem(footfall, 'Footfall'));
  } else {
    root.append(footfallKpis(f.total || {}));
  }
  const grid = el('div', { class: 'grid' });
  if (f) grid.append(...footfallCards(f, { scopeLabel }));
  root.append(grid);
  const loyalty = f ? loyaltyCard(f.total || {}) : null;
  if (loyalty) grid.append(loyalty);

  if (!manager) {
    const ranking = await panel('Stores', async () => {
      const r = await api.get('/api/v1/footfall/stores', { from: query.from, to: query.to, region: query.region });
      return storesTable(r, names);
    });
    grid.append(card('Stores', loyalty ? 8 : 12, ranking));
  }
}

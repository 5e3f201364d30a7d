// Store detail: hourly footfall, dwell per zone as a heatmap on the floor plan, the most common
// paths (step Sankey) and zone-to-zone transitions, the store's gateways. Without an id: the list
// of stores.

import * as api from '../api.js';
import { el, int, pct, duration, ago, dataTable, table } from '../format.js';
import { lineChart, COLORS } from '../charts.js';
import { floorPlan } from '../floorplan.js';
import { pathSankey } from '../sankey.js';
import { pageHead, card, periodForm, panel, problem } from '../ui.js';
import { footfallKpis, shortPeriod, flat, defaultPeriod, noGatewayData } from './overview.js';

export const title = 'Store';

async function storeList(root, ctx) {
  const [stores, gws] = await Promise.all([api.get('/api/v1/stores'), api.get('/api/v1/gateways').catch(() => null)]);
  if (ctx.me.role === 'manager' && stores.length === 1) {
    ctx.navigate({}, [stores[0].id]);
    return;
  }
  // Stores with gateways (the ones with data) first.
  const gateways = new Map();
  for (const g of gws || []) gateways.set(g.store, (gateways.get(g.store) || 0) + 1);
  const list = [...stores].sort((a, b) => (gateways.get(b.id) || 0 ? 1 : 0) - (gateways.get(a.id) || 0 ? 1 : 0));
  const withGateways = stores.filter((s) => gateways.has(s.id)).length;
  root.append(pageHead('Stores', gws ? `${stores.length} stores · ${withGateways} with gateways, listed first` : `${stores.length} stores`));
  if (!stores.length) {
    root.append(el('p', { class: 'empty' }, 'No stores yet: they are imported (CSV or API) or created by the demo.'));
    return;
  }
  root.append(el('div', { class: 'store-list' }, list.map((s) => {
    const n = gateways.get(s.id) || 0;
    return el('a', { href: `#/store/${encodeURIComponent(s.id)}`, dataset: { store: s.id } },
      el('div', { class: 'card' },
        el('h2', {}, s.name),
        el('p', { class: 'note' }, [s.id, s.region, s.tz].filter(Boolean).join(' · ')),
        el('p', { class: 'note' }, s.has_layout ? 'Floor plan' : 'No floor plan',
          gws ? [' · ', el('span', { class: `pill ${n ? 'ok' : 'unknown'}` }, n ? `${n} gateway${n > 1 ? 's' : ''}` : 'no gateway')] : null)));
  })));
}

export async function render(root, ctx) {
  const id = ctx.args[0];
  if (!id) return storeList(root, ctx);
  const p = ctx.params;
  const period = p.get('from') && p.get('to') ? { from: p.get('from'), to: p.get('to') } : await defaultPeriod('day', { store: id });
  // Hourly: the period's last 7 days at most (168 points).
  // (Date.parse of a YYYY-MM-DD is UTC midnight: stay in UTC to get the same date back.)
  const lastWeek = new Date(Math.max(Date.parse(period.from), Date.parse(period.to) - 6 * 86400000)).toISOString().slice(0, 10);
  const hours = { from: lastWeek, to: period.to };
  let detail;
  try {
    detail = await api.get(`/api/v1/stores/${encodeURIComponent(id)}`);
  } catch (e) {
    if (!(e instanceof api.ApiError) || e.status !== 403 || !ctx.me.store) throw e;
    root.append(problem(e, 'Store'), el('p', {}, el('a', { href: `#/store/${encodeURIComponent(ctx.me.store)}` }, 'Open your store instead.')));
    return;
  }
  const zoneNames = new Map((detail.layout?.zones || []).map((z) => [z.id, z.name]));

  const [daily, hourly, zones, paths, gws] = await Promise.all([
    api.get('/api/v1/footfall', { store: id, granularity: 'day', ...period }).catch((e) => e),
    api.get('/api/v1/footfall', { store: id, granularity: 'hour', loyalty: false, ...hours }).catch((e) => e),
    api.get(`/api/v1/stores/${encodeURIComponent(id)}/zones`, period).catch((e) => e),
    api.get(`/api/v1/stores/${encodeURIComponent(id)}/paths`, { ...period, top: 12 }).catch((e) => e),
    api.get('/api/v1/gateways', { store: id }).catch((e) => e),
  ]);
  const { from, to } = period;
  root.append(pageHead(detail.name, `${detail.id} · ${detail.region || 'no region'} · local time ${detail.tz} · ${from} to ${to}`,
    periodForm(ctx, { from, to, granularities: [] })));
  if (daily instanceof Error) root.append(problem(daily, 'Footfall'));
  else {
    root.append(footfallKpis(daily.total || {}));
    if (noGatewayData(daily.total || {})) {
      root.append(el('p', { class: 'notice', dataset: { noData: '' } }, el('strong', {}, 'No gateway data in this period. '),
        Array.isArray(gws) && !gws.length
          ? 'No gateway is registered for this store yet: the figures below stay empty until one sends events.'
          : 'This store’s gateways sent nothing for these days; pick another period or see the gateways below.'));
    }
  }

  const grid = el('div', { class: 'grid' });
  // Hourly footfall.
  if (hourly instanceof Error) {
    grid.append(card('Hourly footfall', 12, await panel('Hourly footfall', () => { throw hourly; })));
  } else {
    const s = (hourly.buckets || []).map(flat);
    grid.append(card('Hourly footfall', 12,
      lineChart({
        labels: s.map((r) => r.period),
        xFormat: (l) => shortPeriod(l.slice(0, 10)),
        xTick: (l) => /T00:/.test(l),
        label: `Visitors and passers-by per hour, ${detail.name}, store local time`,
        height: 230, width: 1240,
        series: [
          { name: 'Visitors', values: s.map((r) => r.visitors), color: COLORS.visitors },
          { name: 'Passers-by', values: s.map((r) => r.passersby), color: COLORS.passers },
        ],
      }),
      el('p', { class: 'note' }, `Hours are the store's local time (${detail.tz}), ${hourly.from} to ${hourly.to}; a visit counts in the hour it started.`),
      dataTable('Table of hourly figures', [
        { key: 'period', label: 'Hour' },
        { key: 'visitors', label: 'Visitors', num: true, format: int },
        { key: 'passersby', label: 'Passers-by', num: true, format: int },
        { key: 'capture_rate', label: 'Capture rate', num: true, format: (v) => pct(v) },
        { key: 'traffic_index', label: 'Traffic index', num: true, format: int },
      ], s, { id: 'hourly-table' })));
  }

  // Zones on the floor plan; beside it, the zone table and the store's gateways.
  const reach = zones instanceof Error ? new Map() : new Map((zones.funnel?.steps || []).map((s) => [s.zone, s.rate]));
  const zoneRows = zones instanceof Error ? [] : (zones.zones || []).map((z) => ({ ...z, name: z.name || zoneNames.get(z.zone) || z.zone, reach: reach.get(z.zone) ?? null }));
  grid.append(card('Zone heatmap', 7, await panel('Zones', async () => {
    if (zones instanceof Error) throw zones;
    const values = new Map(zoneRows.filter((z) => z.stays > 0 || z.dwell_s > 0).map((z) => [z.zone, z.dwell_s]));
    return floorPlan(detail.layout, values, { format: duration, label: `Total dwell time per zone on the floor plan of ${detail.name}`, legendTitle: 'Total dwell:' });
  })));
  const side = el('div', { class: 'span-5 stack' });
  grid.append(side);
  side.append(card('Dwell per zone', 12, await panel('Zones', async () => {
    if (zones instanceof Error) throw zones;
    const funnel = zones.funnel;
    return el('div', {},
      table([
        { key: 'name', label: 'Zone' },
        { key: 'visits', label: 'Visits', num: true, format: int },
        { key: 'visit_share', label: 'Of visits', num: true, format: (v) => pct(v) },
        { key: 'dwell_s', label: 'Total dwell', num: true, format: duration },
        { key: 'mean_stay_s', label: 'Mean stay', num: true, format: duration },
        { key: 'reach', label: 'From entrance', num: true, format: (v) => pct(v) },
      ], zoneRows, { id: 'zones-table', caption: `${int(zones.visits_with_zones)} visits placed in zones`, empty: 'No visit was placed in a zone in this period.' }),
      funnel ? el('p', { class: 'note' }, `Funnel: of ${int(funnel.entered)} visits that started in ${zoneNames.get(funnel.entrance) || funnel.entrance}${funnel.entrance_source === 'layout' ? '' : ' (the most common first zone: the layout names no entrance)'}, the share that went on to each zone.`) : null);
  })));

  // Gateways of this store.
  side.append(card('Gateways', 12, await panel('Gateways', async () => {
    if (gws instanceof Error) throw gws;
    return table([
      { key: 'gateway', label: 'Gateway' },
      { key: 'online', label: 'Status', cell: (g) => el('span', { class: `pill ${g.online === true ? 'ok' : g.online === false ? 'bad' : 'unknown'}` }, g.online === true ? 'online' : g.online === false ? 'offline' : 'no status') },
      { key: 'last_seen_ms', label: 'Last seen', cell: (g) => ago(g.last_seen_ms) },
      { key: 'backlog', label: 'Backlog', num: true, format: int },
    ], gws, { empty: 'No gateway is registered for this store.' });
  })));

  // Paths.
  grid.append(card('Paths through the store', 12, await panel('Paths', async () => {
    if (paths instanceof Error) throw paths;
    const top = (paths.paths || []).map((x) => ({ ...x, count: x.visits }));
    if (!top.length) return el('p', { class: 'empty' }, 'No visits with zone paths in this period.');
    const nameOf = (z) => zoneNames.get(z) || z;
    return el('div', {},
      pathSankey(top, zoneNames, { width: 1240, height: 380, label: `The ${top.length} most common paths through ${detail.name}, step by step` }),
      el('div', { class: 'grid', style: 'margin-top:.8rem' },
        el('div', { class: 'span-7' }, table([
          { key: 'zones', label: 'Path', cell: (r) => r.zones.map(nameOf).join(' → ') + (r.truncated ? ' → …' : '') },
          { key: 'count', label: 'Visits', num: true, format: int },
          { key: 'share', label: 'Share', num: true, format: (v) => pct(v) },
        ], top, { id: 'paths-table', caption: `Most common paths (of ${int(paths.visits_with_zones)} visits with zones; ${int(paths.other_visits)} took other paths)` })),
        el('div', { class: 'span-5' }, table([
          { key: 'source', label: 'From', format: nameOf },
          { key: 'target', label: 'To', format: nameOf },
          { key: 'count', label: 'Moves', num: true, format: int },
        ], (paths.transitions || []).slice(0, 15), { id: 'transitions-table', caption: 'Zone-to-zone transitions' }))));
  })));
  root.append(grid);
}

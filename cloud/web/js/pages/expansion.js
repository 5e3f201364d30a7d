// Expansion: where customers are, how far they are from a store, and which cities to open in next
// — from the GeoJSON the expansion analysis returns.

import * as api from '../api.js';
import { el, int, num1, pct, compact, table } from '../format.js';
import { expansionMap, kindOf } from '../map.js';
import { pageHead, card, kpi, problem } from '../ui.js';

export const title = 'Expansion';

const km = (v) => (v == null ? '—' : `${num1(v)} km`);

const METRICS = [
  ['customers', 'Customers', int],
  ['orders', 'Orders', int],
  ['revenue', 'Revenue', int],
  ['unserved_share', 'Unserved share', (v) => pct(v)],
  ['nearest_store_km', 'Median distance to a store', km],
  ['visits', 'In-store visits', int],
];

const BOUNDARIES = [
  ['', 'Chosen from the customers'],
  ['china-provinces', 'China: provinces'],
  ['china-cities', 'China: prefecture cities'],
  ['world-countries', 'World: countries'],
];

export async function render(root, ctx) {
  const p = ctx.params;
  const metric = METRICS.find(([k]) => k === p.get('metric')) || METRICS[0];
  const query = { regions: p.get('regions'), radius_km: p.get('radius_km') };
  const layers = Object.fromEntries(['regions', 'hexes', 'stores', 'candidates'].map((l) => [l, p.get(l) !== '0']));

  const form = el('form', { class: 'controls', 'aria-label': 'Map options' },
    el('label', {}, 'Boundaries', el('select', { name: 'regions' }, BOUNDARIES.map(([v, l]) => el('option', { value: v, selected: (query.regions || '') === v }, l)))),
    el('label', {}, 'Colour regions by', el('select', { name: 'metric' }, METRICS.map(([v, l]) => el('option', { value: v, selected: v === metric[0] }, l)))),
    el('label', {}, 'Unserved beyond (km)', el('input', { type: 'number', name: 'radius_km', min: 1, step: 1, value: query.radius_km || '', placeholder: '30', style: 'width:7rem' })),
    el('button', { class: 'primary', type: 'submit' }, 'Show'));
  const layerBox = el('fieldset', { class: 'layers', style: 'border:0;padding:0;margin:0' }, el('legend', { class: 'note' }, 'Layers'),
    ...Object.keys(layers).map((l) => el('label', {}, el('input', { type: 'checkbox', name: l, checked: layers[l] }), l)));
  const params = () => {
    const d = Object.fromEntries(new FormData(form).entries());
    for (const l of Object.keys(layers)) d[l] = layerBox.querySelector(`input[name="${l}"]`).checked ? null : '0';
    return d;
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); ctx.navigate(params()); });
  layerBox.addEventListener('change', () => ctx.navigate(params()));

  let fc;
  try {
    fc = await api.get('/api/v1/expansion', query);
  } catch (e) {
    root.append(pageHead('Expansion', null, form), problem(e, 'Expansion analysis'));
    return;
  }
  const by = { region: [], store: [], candidate: [], hex: [] };
  for (const f of fc.features || []) (by[kindOf(f)] || (by[kindOf(f)] = [])).push(f);
  const totals = fc.totals || {};
  const options = fc.options || {};
  const currency = options.currency || '';
  root.append(pageHead('Expansion', `${fc.boundaries || 'regions'}: ${by.region.length} regions · ${by.store.length} stores · ${by.candidate.length} candidate cities`, form));
  root.append(el('div', { class: 'kpis' },
    kpi('customers', 'Customers', totals.customers, int(totals.customers), 'online customers, by home or first order'),
    kpi('orders', 'Orders', totals.orders, int(totals.orders)),
    totals.revenue ? kpi('revenue', 'Revenue', totals.revenue, `${currency}${compact(totals.revenue)}`, `${currency}${int(totals.revenue)} online`) : null,
    kpi('unserved_share', 'Unserved demand', totals.unserved_share, pct(totals.unserved_share), `customers farther than ${options.radius_km ?? '?'} km from every store`),
    kpi('median_km', 'Median distance', totals.median_nearest_store_km, km(totals.median_nearest_store_km), 'from a customer to the nearest store'),
    kpi('stores', 'Stores', by.store.length, int(by.store.length)),
    kpi('candidates', 'Candidate cities', by.candidate.length, int(by.candidate.length))));

  const candidates = by.candidate.map((f) => ({ ...f.properties, lat: f.geometry.coordinates[1], lon: f.geometry.coordinates[0] })).sort((a, b) => a.rank - b.rank);
  const regionRows = by.region.map((f) => ({ id: f.properties?.id ?? f.id, ...f.properties }))
    .sort((a, b) => (b[metric[0]] ?? -Infinity) - (a[metric[0]] ?? -Infinity));
  const attribution = fc.attribution || 'Boundaries and cities: see the analysis for their origin.';
  root.append(el('div', { class: 'grid' },
    card('Map', 12, layerBox,
      expansionMap(fc, { metric: metric[0], metricLabel: metric[1], format: metric[2], layers }),
      el('p', { class: 'note' }, attribution,
        options.k != null ? ` Regions and hexagons with fewer than ${options.k} customers are suppressed (k-anonymity), and as many more as needed so they can't be recovered from the totals.` : '')),
    card('Candidate cities', 8, table([
      { key: 'rank', label: '#', num: true, format: int },
      { key: 'name', label: 'City', cell: (c) => [c.name, el('br'), el('span', { class: 'note' }, [c.region_name, c.country].filter(Boolean).join(', '))] },
      { key: 'score', label: 'Score', num: true, format: num1 },
      { key: 'customers', label: 'Unserved customers', num: true, format: int },
      { key: 'median_nearest_store_km', label: 'Now from a store', num: true, format: km },
      { key: 'reason', label: 'Why', cell: (c) => el('span', { class: 'why' }, c.reason || '') },
    ], candidates, { id: 'candidates-table', empty: 'No candidate city: every customer is within reach of a store.' })),
    card('Regions', 4, table([
      { key: 'name', label: 'Region', cell: (r) => r.name || r.id },
      { key: metric[0], label: metric[1], num: true, format: (v, r) => (r.suppressed ? 'suppressed' : metric[2](v)) },
      { key: 'nearest_store_km', label: 'Median to a store', num: true, format: km },
    ], regionRows.slice(0, 20), { id: 'regions-table', caption: `Top ${Math.min(20, regionRows.length)} regions by ${metric[1].toLowerCase()}` }))));
}

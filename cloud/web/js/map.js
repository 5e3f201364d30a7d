// The expansion map: a GeoJSON FeatureCollection drawn as SVG with a plain projection (no tiles,
// nothing fetched). Regions are a choropleth of one metric, hexagons a density layer, stores and
// candidate cities points (candidates numbered by rank).
//
// Projection: equirectangular, x scaled by cos(mean latitude) of the drawn area — true to shape
// near that latitude, which is all a country- or province-scale map needs.

import { el, svg } from './format.js';
import { blues, magentas, rampLegend, COLORS } from './charts.js';

/** A feature's kind: `properties.kind` if set, otherwise guessed from its shape and properties. */
export function kindOf(f) {
  const p = f.properties || {};
  if (p.kind) return p.kind;
  const t = f.geometry?.type;
  if (t === 'Point') return p.rank != null ? 'candidate' : 'store';
  if (p.h3 != null || p.cell != null) return 'hex';
  return 'region';
}

function eachCoord(geom, fn) {
  if (!geom) return;
  const walk = (c, depth) => (depth === 0 ? fn(c) : c.forEach((x) => walk(x, depth - 1)));
  const depth = { Point: 0, MultiPoint: 1, LineString: 1, MultiLineString: 2, Polygon: 2, MultiPolygon: 3 }[geom.type];
  if (depth !== undefined) walk(geom.coordinates, depth);
  else if (geom.type === 'GeometryCollection') geom.geometries.forEach((g) => eachCoord(g, fn));
}

function makeProjection(features, width) {
  let minLon = Infinity;
  let maxLon = -Infinity;
  let minLat = Infinity;
  let maxLat = -Infinity;
  for (const f of features) {
    eachCoord(f.geometry, ([lon, lat]) => {
      if (lon < minLon) minLon = lon;
      if (lon > maxLon) maxLon = lon;
      if (lat < minLat) minLat = lat;
      if (lat > maxLat) maxLat = lat;
    });
  }
  if (!Number.isFinite(minLon)) return null;
  const padLon = Math.max(0.5, (maxLon - minLon) * 0.03);
  const padLat = Math.max(0.5, (maxLat - minLat) * 0.03);
  minLon -= padLon; maxLon += padLon; minLat -= padLat; maxLat += padLat;
  const k = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
  const spanX = (maxLon - minLon) * k;
  const spanY = maxLat - minLat;
  const s = width / spanX;
  const height = Math.max(240, Math.min(width * 1.1, spanY * s));
  const scale = Math.min(width / spanX, height / spanY);
  const offX = (width - spanX * scale) / 2;
  const offY = (height - spanY * scale) / 2;
  return {
    width,
    height,
    project: ([lon, lat]) => [offX + (lon - minLon) * k * scale, offY + (maxLat - lat) * scale],
  };
}

function pathOf(geom, project) {
  const ring = (r) => r.map((c, i) => {
    const [x, y] = project(c);
    return `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
  }).join('') + 'Z';
  if (geom.type === 'Polygon') return geom.coordinates.map(ring).join('');
  if (geom.type === 'MultiPolygon') return geom.coordinates.map((p) => p.map(ring).join('')).join('');
  return '';
}

/**
 * fc: FeatureCollection; metric: region property to colour by; format: its formatter;
 * layers: {regions, hexes, stores, candidates} booleans.
 */
export function expansionMap(fc, { metric, format, metricLabel, layers, width = 960 }) {
  const features = fc.features || [];
  const by = { region: [], hex: [], store: [], candidate: [] };
  for (const f of features) (by[kindOf(f)] || (by[kindOf(f)] = [])).push(f);
  const frameFeatures = by.region.length ? by.region : features;
  const proj = makeProjection(frameFeatures, width);
  if (!proj) return el('p', { class: 'empty' }, 'Nothing to draw: the analysis returned no features.');
  const { project, height } = proj;
  const label = `Expansion map: ${by.region.length} regions coloured by ${metricLabel}, ${by.store.length} stores, ${by.candidate.length} candidate cities`;
  const root = svg('svg', { class: 'map', viewBox: `0 0 ${width} ${height.toFixed(0)}`, role: 'img', 'aria-label': label }, svg('title', {}, label));
  root.append(svg('defs', {}, svg('pattern', { id: 'suppressed', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
    svg('rect', { width: 6, height: 6, fill: '#eceff2' }), svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#c3ccd5', 'stroke-width': 2 }))));

  const values = by.region.map((f) => f.properties?.[metric]).filter((v) => typeof v === 'number');
  const max = Math.max(0, ...values);
  const gRegions = svg('g', { 'data-layer': 'regions' });
  for (const f of by.region) {
    const p = f.properties || {};
    const v = p[metric];
    const suppressed = p.suppressed === true;
    const known = !suppressed && typeof v === 'number';
    const fill = suppressed ? 'url(#suppressed)' : known ? blues(max > 0 ? v / max : 0) : '#f1f3f5';
    const name = p.name || p.id || f.id;
    const what = suppressed ? 'too few customers to show (suppressed)' : known ? `${metricLabel} ${format(v)}` : 'no customers';
    gRegions.append(svg('path', {
      class: 'region', d: pathOf(f.geometry, project), fill, 'fill-rule': 'evenodd',
      'data-id': p.id ?? f.id ?? '', 'data-value': known ? v : '',
    }, svg('title', {}, `${name}: ${what}`)));
  }
  if (layers.regions) root.append(gRegions);

  const counts = by.hex.map((f) => f.properties?.customers ?? f.properties?.count ?? 0);
  const hmax = Math.max(0, ...counts);
  const gHex = svg('g', { 'data-layer': 'hexes', opacity: 0.8 });
  by.hex.forEach((f, i) => {
    const color = magentas(0.3 + 0.7 * (hmax ? counts[i] / hmax : 0));
    // The outline in the fill colour keeps hexagons visible as dots on a country-scale map.
    gHex.append(svg('path', { class: 'hex', d: pathOf(f.geometry, project), fill: color, stroke: color, 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' },
      svg('title', {}, `hexagon ${f.properties?.h3 ?? f.properties?.cell ?? ''}: ${counts[i]} customers`)));
  });
  if (layers.hexes) root.append(gHex);

  const gStores = svg('g', { 'data-layer': 'stores' });
  for (const f of by.store) {
    const [x, y] = project(f.geometry.coordinates);
    const p = f.properties || {};
    gStores.append(svg('circle', { class: 'store', cx: x, cy: y, r: 4.5, 'data-id': p.id ?? '' }, svg('title', {}, `store ${p.name || p.id}`)));
  }
  if (layers.stores) root.append(gStores);

  const gCand = svg('g', { 'data-layer': 'candidates' });
  for (const f of [...by.candidate].sort((a, b) => (b.properties?.rank ?? 0) - (a.properties?.rank ?? 0))) {
    const [x, y] = project(f.geometry.coordinates);
    const p = f.properties || {};
    const g = svg('g', { 'data-rank': p.rank ?? '' });
    g.append(svg('circle', { class: 'candidate', cx: x, cy: y, r: 9 }, svg('title', {}, `#${p.rank} ${p.name}: score ${p.score}`)));
    g.append(svg('text', { x, y: y + 3.5, 'text-anchor': 'middle', 'font-size': 10, 'font-weight': 700, fill: '#fff' }, String(p.rank ?? '')));
    gCand.append(g);
  }
  if (layers.candidates) root.append(gCand);

  const legendItems = el('ul', { class: 'legend' },
    el('li', {}, el('span', { class: 'swatch', style: `background:${COLORS.accent};border-radius:50%` }), `Store (${by.store.length})`),
    el('li', {}, el('span', { class: 'swatch', style: `background:${COLORS.accent2};border-radius:50%` }), `Candidate city, numbered by rank (${by.candidate.length})`),
    el('li', {}, el('span', { class: 'swatch', style: 'background:repeating-linear-gradient(45deg,#eceff2 0 3px,#c3ccd5 3px 5px)' }), 'Suppressed: too few customers to show'),
    el('li', {}, el('span', { class: 'swatch', style: 'background:#f1f3f5;border:1px solid #d9e0e7' }), 'No customers'),
    by.hex.length ? el('li', {}, el('span', { class: 'swatch', style: `background:${magentas(0.75)}` }), `Customer density, H3 hexagons (${by.hex.length})`) : null);
  return el('figure', { style: 'margin:0' }, root, rampLegend(blues, format(0), format(max), `${metricLabel}:`), legendItems);
}

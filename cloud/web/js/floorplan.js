// A store's floor plan as SVG: zones (polygons in metres, from the store's StoreConfig layout)
// filled by a value on a heat ramp, receivers as dots. y grows upwards, as in the layout (the shop
// front is usually y = 0, drawn at the bottom).

import { el, svg } from './format.js';
import { heat, rampLegend, COLORS } from './charts.js';

function centroid(poly) {
  let a = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < poly.length; i++) {
    const [x0, y0] = poly[i];
    const [x1, y1] = poly[(i + 1) % poly.length];
    const f = x0 * y1 - x1 * y0;
    a += f;
    cx += (x0 + x1) * f;
    cy += (y0 + y1) * f;
  }
  if (Math.abs(a) < 1e-9) {
    const n = poly.length || 1;
    return [poly.reduce((s, p) => s + p[0], 0) / n, poly.reduce((s, p) => s + p[1], 0) / n];
  }
  return [cx / (3 * a), cy / (3 * a)];
}

function bounds(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return { minX: Math.min(...xs), maxX: Math.max(...xs), minY: Math.min(...ys), maxY: Math.max(...ys) };
}

/**
 * layout: {zones: [{id, name, polygon}], receivers: [{id, x, y}], entrance}
 * values: Map zone id → number (the heat), format(value) → text under the zone name.
 */
export function floorPlan(layout, values, { format, label, legendTitle }) {
  const zones = layout?.zones || [];
  const receivers = layout?.receivers || [];
  const pts = zones.flatMap((z) => z.polygon).concat(receivers.map((r) => [r.x, r.y]));
  if (!pts.length) return el('p', { class: 'empty' }, 'This store has no floor plan yet (its layout has no zones).');
  const b = bounds(pts);
  const pad = Math.max(0.5, Math.max(b.maxX - b.minX, b.maxY - b.minY) * 0.03);
  const w = b.maxX - b.minX + 2 * pad;
  const unit = Math.min(w, b.maxY - b.minY + 2 * pad);
  // Room under the plan for the scale bar, clear of the zones' outlines.
  const foot = unit * 0.07;
  const h = b.maxY - b.minY + 2 * pad + foot;
  const max = Math.max(0, ...[...values.values()].filter((v) => v != null));
  const root = svg('svg', {
    class: 'floorplan', viewBox: `${b.minX - pad} ${-b.maxY - pad} ${w} ${h}`, role: 'img', 'aria-label': label,
  }, svg('title', {}, label));
  for (const z of zones) {
    const v = values.get(z.id);
    const t = max > 0 && v != null ? v / max : 0;
    const d = z.polygon.map(([x, y], i) => `${i ? 'L' : 'M'}${x},${-y}`).join('') + 'Z';
    const fill = v == null ? '#eceff2' : heat(t);
    const g = svg('g', { 'data-zone': z.id, 'data-value': v ?? '' });
    g.append(svg('path', { class: 'zone', d, fill }, svg('title', {}, `${z.name}: ${v == null ? 'no data' : format(v)}`)));
    if (z.id === layout.entrance) {
      g.append(svg('path', { d, fill: 'none', stroke: COLORS.accent, 'stroke-width': unit * 0.012, 'stroke-dasharray': `${unit * 0.03} ${unit * 0.02}` }));
    }
    // Labels fit the zone: the name above its centre, the value below (a receiver often stands
    // at the centre), each no wider than about 85% of the zone.
    const zb = bounds(z.polygon);
    const zw = zb.maxX - zb.minX;
    const zh = zb.maxY - zb.minY;
    const valueText = v == null ? 'no data' : format(v);
    const size = Math.min(zh * 0.15, (zw * 0.85) / (0.6 * Math.max(4, z.name.length)), unit * 0.05);
    const vsize = Math.min(size * 0.85, (zw * 0.85) / (0.58 * Math.max(4, valueText.length)));
    const [cx, cy] = centroid(z.polygon);
    const ink = t > 0.6 ? '#ffffff' : COLORS.ink;
    g.append(svg('text', { x: cx, y: -cy - size * 0.55, 'font-size': size, 'font-weight': 600, fill: ink }, z.name));
    g.append(svg('text', { x: cx, y: -cy + vsize * 1.45, 'font-size': vsize, fill: ink }, valueText));
    root.append(g);
  }
  const r = unit * 0.012;
  for (const rc of receivers) {
    root.append(svg('circle', { cx: rc.x, cy: -rc.y, r, fill: COLORS.ink, opacity: 0.65 }, svg('title', {}, `receiver ${rc.id}`)));
  }
  // Scale: a 1 m or 5 m bar in the bottom-left corner.
  const bar = [1, 2, 5, 10, 20, 50].filter((m) => m <= w / 4).pop() || 1;
  const bx = b.minX;
  const by = -b.minY + pad + foot * 0.75;
  root.append(svg('line', { x1: bx, x2: bx + bar, y1: by, y2: by, stroke: COLORS.ink, 'stroke-width': unit * 0.006 }));
  root.append(svg('text', { x: bx + bar / 2, y: by - unit * 0.008, 'font-size': unit * 0.025, fill: COLORS.ink }, `${bar} m`));
  const fig = el('figure', { style: 'margin:0' }, root);
  if (max > 0) fig.append(rampLegend(heat, format(0), format(max), legendTitle));
  fig.append(el('p', { class: 'note' }, `Dots are receivers; the dashed outline is the entrance zone. Grey zones had no visits in this period.`));
  return fig;
}

// Paths through a store as a step Sankey: column k holds the k-th zone of each visit's path, bands
// are visits moving from one zone to the next. Built from the most common paths, so it is acyclic
// by construction (a shopper going back to a zone appears again in a later column).

import { el, svg } from './format.js';
import { COLORS, fit } from './charts.js';

export const ZONE_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/**
 * paths: [{zones: [id…], count}], names: Map id → name.
 */
export function pathSankey(paths, names, { maxSteps = 5, width = 760, height = 340, label }) {
  width = fit(width);
  const zoneIds = [...new Set(paths.flatMap((p) => p.zones))];
  const color = new Map(zoneIds.map((z, i) => [z, ZONE_COLORS[i % ZONE_COLORS.length]]));
  const steps = Math.min(maxSteps, Math.max(1, ...paths.map((p) => p.zones.length)));
  const nodes = new Map(); // `${step}|${zone}` → {step, zone, value, out, in}
  const links = new Map(); // `${a}>${b}` → {a, b, value}
  const node = (step, zone) => {
    const k = `${step}|${zone}`;
    if (!nodes.has(k)) nodes.set(k, { key: k, step, zone, value: 0, outOff: 0, inOff: 0 });
    return nodes.get(k);
  };
  for (const p of paths) {
    const zs = p.zones.slice(0, steps);
    zs.forEach((z, i) => {
      node(i, z).value += p.count;
      if (i > 0) {
        const a = node(i - 1, zs[i - 1]).key;
        const b = node(i, z).key;
        const k = `${a}>${b}`;
        if (!links.has(k)) links.set(k, { a, b, value: 0 });
        links.get(k).value += p.count;
      }
    });
  }
  const nodeW = 14;
  const gap = 10;
  const top = 8;
  const labelRoom = 120;
  const columns = [...Array(steps)].map((_, s) => [...nodes.values()].filter((n) => n.step === s).sort((a, b) => b.value - a.value));
  const maxTotal = Math.max(...columns.map((c) => c.reduce((a, n) => a + n.value, 0)));
  const maxCount = Math.max(...columns.map((c) => c.length));
  const bottomRoom = 20; // the step labels
  const scale = (height - top - bottomRoom - gap * (maxCount - 1)) / (maxTotal || 1);
  const colX = (s) => (steps <= 1 ? 0 : (s * (width - labelRoom - nodeW)) / (steps - 1));
  for (const col of columns) {
    let y = top;
    for (const n of col) {
      n.x = colX(n.step);
      n.y = y;
      n.h = Math.max(2, n.value * scale);
      y += n.h + gap;
    }
  }
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label }, svg('title', {}, label));
  const sorted = [...links.values()].sort((l, m) => nodes.get(l.b).y - nodes.get(m.b).y);
  for (const l of sorted) {
    const a = nodes.get(l.a);
    const b = nodes.get(l.b);
    const t = l.value * scale;
    const y0 = a.y + a.outOff + t / 2;
    const y1 = b.y + b.inOff + t / 2;
    a.outOff += t;
    b.inOff += t;
    const x0 = a.x + nodeW;
    const x1 = b.x;
    const mx = (x0 + x1) / 2;
    root.append(svg('path', {
      d: `M${x0},${y0}C${mx},${y0} ${mx},${y1} ${x1},${y1}`, fill: 'none', stroke: color.get(a.zone),
      'stroke-opacity': 0.35, 'stroke-width': Math.max(1, t),
    }, svg('title', {}, `${names.get(a.zone) || a.zone} → ${names.get(b.zone) || b.zone}: ${l.value} visits`)));
  }
  for (const n of nodes.values()) {
    const name = names.get(n.zone) || n.zone;
    root.append(svg('rect', { x: n.x, y: n.y, width: nodeW, height: n.h, fill: color.get(n.zone), rx: 2 },
      svg('title', {}, `step ${n.step + 1}: ${name}, ${n.value} visits`)));
    if (n.h >= 11) {
      root.append(svg('text', { x: n.x + nodeW + 5, y: n.y + n.h / 2 + 4, style: `fill:${COLORS.ink}` }, `${name} (${n.value})`));
    }
  }
  for (let s = 0; s < steps; s++) {
    root.append(svg('text', { x: colX(s) + nodeW / 2, y: height - 4, 'text-anchor': s === 0 ? 'start' : 'middle' }, `step ${s + 1}`));
  }
  return el('figure', { style: 'margin:0' }, root,
    el('ul', { class: 'legend' }, zoneIds.map((z) => el('li', {}, el('span', { class: 'swatch', style: `background:${color.get(z)}` }), names.get(z) || z))));
}

// Small hand-written SVG charts: line, stacked bars, horizontal bars, and a forest plot (estimate
// with confidence interval). Each returns a <figure> with an accessible label, a legend in real
// text and native tooltips (<title>); pages put a data table beside each chart.

import { el, svg, int } from './format.js';

/** The palette (also in app.css); SVG presentation attributes can't use CSS variables. */
export const COLORS = {
  ink: '#1b2733',
  muted: '#5b6b7a',
  accent: '#1f4e79',
  accent2: '#d9822b',
  good: '#2e7d32',
  bad: '#b3261e',
  visitors: '#1f77b4',
  passers: '#9aa9b8',
  traffic: '#8e44ad',
  capture: '#d9822b',
  dwell: ['#c6dbef', '#6baed6', '#2171b5', '#08519c', '#08306b'],
};

/**
 * A chart's drawing width: as asked, but no wider than the window leaves for it, so text keeps its
 * size on a phone instead of being scaled down with a wide drawing.
 */
export function fit(width) {
  const room = typeof window === 'undefined' ? width : window.innerWidth - 64;
  return Math.max(280, Math.min(width, room));
}

/** A "nice" axis maximum and step for values up to `max` with about `ticks` intervals. */
export function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { max: 1, step: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  return { max: Math.ceil(max / step) * step, step };
}

function legend(items) {
  return el('ul', { class: 'legend' }, items.map((s) =>
    el('li', {}, el('span', { class: 'swatch', style: `background:${s.color}` }), s.name)));
}

function frame(width, height, label) {
  return svg('svg', {
    class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label,
    preserveAspectRatio: 'xMidYMid meet',
  }, svg('title', {}, label));
}

let measure;

/** The width of `text` in a chart's 11px font (SVG user units), measured on a canvas. */
export function textWidth(text, px = 11) {
  const t = String(text ?? '');
  try {
    measure ??= document.createElement('canvas').getContext('2d');
    measure.font = `${px}px system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, sans-serif`;
    return measure.measureText(t).width;
  } catch {
    return t.length * px * 0.6;
  }
}

/** `text` cut (with an ellipsis) to at most `room` wide. */
export function clip(text, room, px = 11) {
  const t = String(text ?? '');
  if (textWidth(t, px) <= room) return t;
  let lo = 0;
  let hi = t.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (textWidth(`${t.slice(0, mid).trimEnd()}…`, px) <= room) lo = mid;
    else hi = mid - 1;
  }
  return `${t.slice(0, lo).trimEnd()}…`;
}

/** A left margin for row labels: as wide as the longest label, but at most `share` of `width`. */
function labelMargin(labels, width, share = 0.45) {
  const longest = Math.max(0, ...labels.map((l) => textWidth(l)));
  return Math.round(Math.min(width * share, Math.max(40, longest + 14)));
}

/** A row label: right-aligned at x, cut to `room`, the whole label in a tooltip. */
function rowLabel(text, x, y, room) {
  const shown = clip(text, room);
  return svg('text', { x, y, 'text-anchor': 'end', style: `fill:${COLORS.ink}` }, shown,
    shown !== String(text) ? svg('title', {}, String(text)) : null);
}

/** Which of n x labels to print so that at most `max` show. */
function labelStride(n, max) {
  return Math.max(1, Math.ceil(n / max));
}

function yAxis(g, { left, right, top, bottom, scale, yFormat, width }) {
  const h = bottom - top;
  for (let v = 0; v <= scale.max + 1e-9; v += scale.step) {
    const y = bottom - (v / scale.max) * h;
    g.append(svg('line', { class: 'grid-line', x1: left, x2: width - right, y1: y, y2: y }));
    g.append(svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, yFormat(v)));
  }
}

/**
 * Lines over shared x labels.
 * series: [{name, values: [number|null], color}]
 */
export function lineChart({ labels, series, label, yFormat = int, xFormat = (l) => l, xTick, partial = false, height = 240, width = 720, yMax }) {
  width = fit(width);
  const m = { left: 52, right: 14, top: 12, bottom: 30 };
  const all = series.flatMap((s) => s.values).filter((v) => v != null);
  const scale = niceScale(yMax ?? Math.max(0, ...all));
  const root = frame(width, height, label);
  const bottom = height - m.bottom;
  const plotW = width - m.left - m.right;
  const n = labels.length;
  const x = (i) => (n <= 1 ? m.left + plotW / 2 : m.left + (i * plotW) / (n - 1));
  const y = (v) => bottom - (v / scale.max) * (bottom - m.top);
  yAxis(root, { left: m.left, right: m.right, top: m.top, bottom, scale, yFormat, width });
  root.append(svg('line', { class: 'axis', x1: m.left, x2: width - m.right, y1: bottom, y2: bottom }));
  if (xTick) {
    // Labels where xTick says (e.g. each midnight of an hourly series), with a faint line at each.
    const ticks = labels.map((l, i) => (xTick(l, i) ? i : -1)).filter((i) => i >= 0);
    const every = labelStride(ticks.length, Math.max(2, Math.floor(plotW / 70)));
    ticks.forEach((i, k) => {
      root.append(svg('line', { class: 'grid-line', x1: x(i), x2: x(i), y1: m.top, y2: bottom }));
      if (k % every === 0) root.append(svg('text', { x: x(i), y: bottom + 18, 'text-anchor': 'start' }, xFormat(labels[i])));
    });
  } else {
    const stride = labelStride(n, Math.max(2, Math.floor(plotW / 70)));
    labels.forEach((l, i) => {
      // Every stride-th label and the last one, unless the last would crowd its neighbour.
      const last = i === n - 1;
      if (!last && (i % stride !== 0 || n - 1 - i < stride * 0.75)) return;
      root.append(svg('text', { x: x(i), y: bottom + 18, 'text-anchor': last && n > 1 ? 'end' : 'middle' }, xFormat(l)));
    });
  }
  // `partial`: the last point is a period still running (today so far): its segment is dashed.
  const solid = partial && n > 1 ? n - 1 : n;
  for (const s of series) {
    let d = '';
    let pen = false;
    s.values.slice(0, solid).forEach((v, i) => {
      if (v == null) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    root.append(svg('path', { class: 'series', d, stroke: s.color, 'data-series': s.name }));
    const [a, b] = [s.values[n - 2], s.values[n - 1]];
    if (solid < n && a != null && b != null) {
      root.append(svg('path', { class: 'series partial', d: `M${x(n - 2).toFixed(1)},${y(a).toFixed(1)}L${x(n - 1).toFixed(1)},${y(b).toFixed(1)}`, stroke: s.color, 'stroke-dasharray': '4 4' }));
    }
    if (n <= 60) {
      s.values.forEach((v, i) => {
        if (v == null) return;
        const sofar = partial && i === n - 1 ? ' (so far)' : '';
        root.append(svg('circle', { class: 'dot', cx: x(i), cy: y(v), r: 3, fill: sofar ? '#fff' : s.color, style: sofar ? `stroke:${s.color};stroke-width:1.5` : null },
          svg('title', {}, `${s.name}, ${labels[i]}${sofar}: ${yFormat(v)}`)));
      });
    }
  }
  return el('figure', { class: 'figure', style: 'margin:0' }, root, legend(series));
}

/**
 * Stacked vertical bars.
 * stacks: [{name, values: [number], color}] (bottom first)
 */
export function stackedBars({ labels, stacks, label, yFormat = int, xFormat = (l) => l, partial = false, height = 240, width = 720 }) {
  width = fit(width);
  const m = { left: 52, right: 14, top: 12, bottom: 30 };
  const totals = labels.map((_, i) => stacks.reduce((a, s) => a + (s.values[i] || 0), 0));
  const scale = niceScale(Math.max(0, ...totals));
  const root = frame(width, height, label);
  const bottom = height - m.bottom;
  const plotW = width - m.left - m.right;
  const n = labels.length;
  const slot = plotW / Math.max(1, n);
  const barW = Math.max(1, Math.min(40, slot * 0.72));
  const y = (v) => (v / scale.max) * (bottom - m.top);
  yAxis(root, { left: m.left, right: m.right, top: m.top, bottom, scale, yFormat, width });
  root.append(svg('line', { class: 'axis', x1: m.left, x2: width - m.right, y1: bottom, y2: bottom }));
  const stride = labelStride(n, Math.max(2, Math.floor(plotW / 70)));
  labels.forEach((l, i) => {
    const cx = m.left + slot * i + slot / 2;
    let acc = 0;
    const sofar = partial && i === n - 1;
    for (const s of stacks) {
      const v = s.values[i] || 0;
      if (v > 0) {
        const h = y(v);
        root.append(svg('rect', { x: cx - barW / 2, y: bottom - y(acc) - h, width: barW, height: h, fill: s.color, 'fill-opacity': sofar ? 0.45 : null },
          svg('title', {}, `${l}${sofar ? ' (so far)' : ''} · ${s.name}: ${yFormat(v)}`)));
      }
      acc += v;
    }
    if (i % stride === 0) root.append(svg('text', { x: cx, y: bottom + 18, 'text-anchor': 'middle' }, xFormat(l)));
  });
  return el('figure', { class: 'figure', style: 'margin:0' }, root, legend(stacks));
}

/** Horizontal bars: rows [{label, value}], sorted as given. */
export function hBars({ rows, label, format = int, color = COLORS.accent, width = 560, rowH = 26 }) {
  width = fit(width);
  const left = labelMargin(rows.map((r) => r.label), width);
  const right = Math.max(40, ...rows.map((r) => textWidth(format(r.value)) + 12));
  const height = rows.length * rowH + 8;
  const max = Math.max(0, ...rows.map((r) => r.value || 0)) || 1;
  const root = frame(width, height, label);
  rows.forEach((r, i) => {
    const yTop = 4 + i * rowH;
    const w = ((r.value || 0) / max) * (width - left - right);
    root.append(rowLabel(r.label, left - 8, yTop + rowH / 2 + 4, left - 12));
    root.append(svg('rect', { x: left, y: yTop + 4, width: Math.max(0, w), height: rowH - 8, rx: 3, fill: r.color || color },
      svg('title', {}, `${r.label}: ${format(r.value)}`)));
    root.append(svg('text', { x: left + w + 6, y: yTop + rowH / 2 + 4 }, format(r.value)));
  });
  return el('figure', { class: 'figure', style: 'margin:0' }, root);
}

/**
 * Estimates with confidence intervals on one axis through zero: rows [{label, estimate, low, high}].
 */
export function forestPlot({ rows, label, format, width = 640, rowH = 30 }) {
  width = fit(width);
  const left = labelMargin(rows.map((r) => r.label), width, 0.46);
  const right = Math.max(60, ...rows.map((r) => textWidth(r.estimate == null ? '' : format(r.estimate)) + 16));
  const height = rows.length * rowH + 34;
  const vals = rows.flatMap((r) => [r.low, r.high, r.estimate]).filter((v) => v != null);
  const ext = Math.max(0.01, ...vals.map(Math.abs)) * 1.1;
  const x = (v) => left + ((v + ext) / (2 * ext)) * (width - left - right);
  const root = frame(width, height, label);
  const bottom = rows.length * rowH + 6;
  root.append(svg('line', { class: 'axis', x1: x(0), x2: x(0), y1: 2, y2: bottom }));
  root.append(svg('text', { x: x(0), y: bottom + 16, 'text-anchor': 'middle' }, `0 (no lift)`));
  root.append(svg('text', { x: x(-ext), y: bottom + 16, 'text-anchor': 'start' }, format(-ext)));
  root.append(svg('text', { x: x(ext), y: bottom + 16, 'text-anchor': 'end' }, format(ext)));
  rows.forEach((r, i) => {
    const cy = 4 + i * rowH + rowH / 2;
    root.append(rowLabel(r.label, left - 10, cy + 4, left - 14));
    if (r.estimate == null) {
      root.append(svg('text', { x: x(0) + 6, y: cy + 4 }, 'not enough data'));
      return;
    }
    const sig = r.low != null && r.high != null && (r.low > 0 || r.high < 0);
    const color = sig ? (r.estimate > 0 ? COLORS.good : COLORS.bad) : COLORS.muted;
    if (r.low != null && r.high != null) {
      root.append(svg('line', { x1: x(r.low), x2: x(r.high), y1: cy, y2: cy, stroke: color, 'stroke-width': 2.5 }));
    }
    root.append(svg('circle', { cx: x(r.estimate), cy, r: 5, fill: color },
      svg('title', {}, `${r.label}: ${format(r.estimate)} (${format(r.low)} to ${format(r.high)})`)));
    root.append(svg('text', { x: width - right + 8, y: cy + 4, style: `fill:${COLORS.ink}` }, format(r.estimate)));
  });
  return el('figure', { class: 'figure', style: 'margin:0' }, root);
}

/** A sequential colour ramp through `stops` (RGB triples), as a function of t in 0..1. */
function ramp(stops) {
  return (t) => {
    t = Math.min(1, Math.max(0, t || 0));
    const p = t * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(p));
    const f = p - i;
    const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  };
}

/** Light yellow → deep red (the floor plan's dwell). */
export const heat = ramp([[255, 247, 188], [254, 196, 79], [236, 112, 20], [204, 76, 2], [140, 45, 4]]);

/** Sequential blues for choropleths. */
export const blues = ramp([[239, 243, 255], [189, 215, 231], [107, 174, 214], [49, 130, 189], [8, 81, 156]]);

/** Pinks to deep magenta: customer density hexagons, apart from the blue regions and the orange
 * candidate cities. */
export const magentas = ramp([[252, 197, 192], [250, 159, 181], [247, 104, 161], [197, 27, 138], [122, 1, 119]]);

/** A colour ramp legend: "low ▭▭▭ high". */
export function rampLegend(ramp, lowText, highText, title) {
  const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${ramp(t)} ${t * 100}%`).join(',');
  return el('div', { class: 'scale-bar' }, title ? el('span', {}, title) : null, el('span', {}, lowText),
    el('span', { class: 'ramp', style: `background:linear-gradient(90deg,${stops})`, 'aria-hidden': 'true' }),
    el('span', {}, highText));
}

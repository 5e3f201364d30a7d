// Formatting and a tiny DOM builder. Every number shown goes through here, and the element that
// shows it carries the raw value in `data-value`, so tests (and screen readers, through the text)
// read exactly what the API said.

const intFmt = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const dec1 = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });
const moneyFmt = new Intl.NumberFormat('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export const DASH = '—';

export function int(n) {
  return n == null || Number.isNaN(n) ? DASH : intFmt.format(n);
}

const compactFmt = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

/** A large number in short: 15.3M, 389K. */
export function compact(n) {
  return n == null || Number.isNaN(n) ? DASH : compactFmt.format(n);
}

export function num1(n) {
  return n == null || Number.isNaN(n) ? DASH : dec1.format(n);
}

/** A share (0..1) as a percentage. */
export function pct(x, digits = 1) {
  return x == null || Number.isNaN(x) ? DASH : `${(x * 100).toFixed(digits)}%`;
}

/** A difference of shares as percentage points, signed. */
export function pp(x, digits = 1) {
  if (x == null || Number.isNaN(x)) return DASH;
  const v = (x * 100).toFixed(digits);
  return `${x > 0 ? '+' : ''}${v} pp`;
}

/** Minor units (cents) as an amount with two decimals. */
export function money(cents) {
  return cents == null ? DASH : moneyFmt.format(cents / 100);
}

/** Seconds as "45 s", "12 min", "1 h 20 min". */
export function duration(s) {
  if (s == null || Number.isNaN(s)) return DASH;
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

/** Unix ms as local "YYYY-MM-DD HH:MM". */
export function dateTime(ms) {
  if (ms == null) return DASH;
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Unix ms as "5 min ago". */
export function ago(ms, now = Date.now()) {
  if (ms == null) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 5) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/** YYYY-MM-DD of a Date, in local time. */
export function isoDay(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/**
 * el('td', {class: 'num', dataset: {value: 3}}, '3') — attributes: `class`, `dataset`, `on*`
 * functions as listeners, `text`, anything else as an attribute (false/null omitted).
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

const SVGNS = 'http://www.w3.org/2000/svg';

/** The same for SVG elements. */
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv != null) e.dataset[dk] = String(dv);
    } else if (k === 'style') {
      // CSSOM, not the style attribute: the page's CSP allows no inline style attributes.
      e.style.cssText = String(v);
    } else if (k === 'text') {
      e.textContent = String(v);
    } else if (k.startsWith('on') && typeof v === 'function') {
      e.addEventListener(k.slice(2), v);
    } else {
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A number shown in a cell or tile: formatted text, raw value in data-value. */
export function value(tag, raw, text, attrs = {}) {
  return el(tag, { ...attrs, dataset: { ...(attrs.dataset || {}), value: raw ?? '' } }, text);
}

/**
 * A table: columns [{key, label, num?, format?(v,row), cell?(row) -> Node}], rows of objects.
 * Numeric cells carry `data-value` with the raw number. `note(row)`, if it returns something, replaces
 * every cell after the first with one cell saying it (e.g. "no gateway data" instead of zeros); such
 * rows carry `data-note`.
 */
export function table(columns, rows, { caption, empty = 'No data for this period.', id, note } = {}) {
  if (!rows.length) return el('p', { class: 'empty' }, empty);
  const head = el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)));
  const cellOf = (r, c, i) => {
    const tag = i === 0 && !c.num ? 'th' : 'td';
    const attrs = { class: c.num ? 'num' : null, scope: tag === 'th' ? 'row' : null, dataset: { key: c.key } };
    if (c.cell) return el(tag, attrs, c.cell(r));
    const v = r[c.key];
    const text = c.format ? c.format(v, r) : v ?? DASH;
    if (c.num) attrs.dataset.value = v ?? '';
    return el(tag, attrs, text);
  };
  const body = rows.map((r) => {
    const n = note ? note(r) : null;
    if (n == null || columns.length < 2) return el('tr', {}, columns.map((c, i) => cellOf(r, c, i)));
    return el('tr', { dataset: { note: '' } }, cellOf(r, columns[0], 0),
      el('td', { class: 'row-note', colspan: columns.length - 1 }, n));
  });
  return el('div', { class: 'table-wrap' },
    el('table', { id }, caption ? el('caption', {}, caption) : null, el('thead', {}, head), el('tbody', {}, body)));
}

/** `<details>` holding a table: the numbers behind a chart. */
export function dataTable(summary, columns, rows, opts) {
  return el('details', { class: 'data' }, el('summary', {}, summary), table(columns, rows, opts));
}

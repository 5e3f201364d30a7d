// Page building blocks: headings, cards, KPI tiles, the period form, error and "not available"
// boxes.

import { el, value } from './format.js';
import { ApiError } from './api.js';

export function pageHead(title, sub, ...extra) {
  return el('div', { class: 'page-head' }, el('div', {}, el('h1', {}, title), sub ? el('p', { class: 'sub' }, sub) : null), ...extra);
}

export function card(title, span, ...children) {
  const id = `card-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return el('section', { class: `card span-${span}`, 'aria-labelledby': id },
    el('div', { class: 'card-head' }, el('h2', { id }, title)), ...children);
}

/** A KPI tile; `key` names it for tests (data-kpi), `raw` is the API's number. */
export function kpi(key, labelText, raw, text, hint) {
  return el('div', { class: 'kpi', dataset: { kpi: key } },
    el('span', { class: 'label' }, labelText),
    value('span', raw, text, { class: 'value' }),
    hint ? el('span', { class: 'hint' }, hint) : null);
}

/**
 * The period form: from, to, granularity (and optional extra fields). On submit, calls
 * ctx.navigate with the form's values (so the period is in the address and survives a reload).
 */
export function periodForm(ctx, { from, to, granularity, granularities = ['day', 'week'], extra = [] }) {
  const gran = granularities.length
    ? el('label', {}, 'Granularity', el('select', { name: 'granularity' },
      granularities.map((g) => el('option', { value: g, selected: g === granularity }, g))))
    : null;
  const form = el('form', { class: 'controls', 'aria-label': 'Period' },
    ...extra,
    el('label', {}, 'From', el('input', { type: 'date', name: 'from', value: from || '', required: true })),
    el('label', {}, 'To', el('input', { type: 'date', name: 'to', value: to || '', required: true })),
    gran,
    el('button', { class: 'primary', type: 'submit' }, 'Show'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form).entries());
    ctx.navigate(data);
  });
  return form;
}

/** A box explaining an error; "not available" for endpoints this server doesn't have. */
export function problem(e, what) {
  if (e instanceof ApiError && e.missing) {
    return el('div', { class: 'notice', dataset: { missing: e.path } },
      el('strong', {}, `${what}: not available on this server yet. `),
      `The dashboard asks ${e.path}, which this build of dwell-cloud does not serve.`);
  }
  if (e instanceof ApiError && e.status === 403) {
    return el('div', { class: 'notice', dataset: { forbidden: e.path } },
      el('strong', {}, `${what}: not visible with this token. `), e.message);
  }
  return el('div', { class: 'error', role: 'alert' },
    el('strong', {}, `${what}: `),
    e instanceof ApiError ? `${e.message} (${e.status || 'network'} ${e.code})` : String(e.message || e));
}

/**
 * Runs `fn` and, if it throws, returns a problem() box instead: one failing panel never blanks the
 * whole page.
 */
export async function panel(what, fn) {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof ApiError)) console.error(e);
    return problem(e, what);
  }
}

// Campaigns: what each sent, what came of the coupons (delivered, redeemed, revenue the tills
// reported), and whether it changed behaviour — lift of the conversion over the randomized holdout
// with its 95 % interval.

import * as api from '../api.js';
import { el, int, pct, pp, money, table } from '../format.js';
import { forestPlot, hBars, COLORS } from '../charts.js';
import { pageHead, card, kpi, problem } from '../ui.js';

export const title = 'Campaigns';

/** One row per campaign from its results (`GET /api/v1/campaigns/{id}/results`). */
export function campaignRow(c, r) {
  const t = r.total;
  return {
    campaign: c.spec.id,
    name: c.spec.name,
    active: c.active,
    sent: t.decisions.sent,
    holdout: t.decisions.holdout,
    capped: t.decisions.capped + t.decisions.budget,
    issued: t.coupons.issued,
    delivered: t.coupons.delivered,
    redeemed: t.coupons.redeemed,
    redemption_rate: t.coupons.redemption_rate,
    revenue_cents: t.coupons.revenue_cents,
    treated_conversion: t.lift.treated.conversion,
    holdout_conversion: t.lift.holdout.conversion,
    lift: t.lift.lift,
    ci: t.lift.ci95,
    significant: t.lift.significant,
    window: r.conversion_window_days,
    parts: [
      ...(r.stores || []).map((p) => ({ kind: 'store', id: p.store, detail: '', f: p })),
      ...(r.segments || []).map((p) => ({ kind: 'segment', id: p.segment, detail: p.expression, f: p })),
    ],
  };
}

/** One row per campaign and store or segment that had a decision. */
export function breakdownRows(rows) {
  return rows.flatMap((c) => c.parts
    .filter((p) => p.f.decisions.sent + p.f.decisions.holdout > 0)
    .map((p) => ({
      campaign: c.name,
      part: `${p.kind} ${p.id}`,
      detail: p.detail,
      sent: p.f.decisions.sent,
      holdout: p.f.decisions.holdout,
      redeemed: p.f.coupons.redeemed,
      redemption_rate: p.f.coupons.redemption_rate,
      revenue_cents: p.f.coupons.revenue_cents,
      lift: p.f.lift.lift,
      ci: p.f.lift.ci95,
    })));
}

export async function render(root, ctx) {
  let list;
  try {
    list = await api.get('/api/v1/campaigns');
  } catch (e) {
    root.append(pageHead('Campaigns', null), problem(e, 'Campaigns'));
    return;
  }
  const results = await Promise.all(list.map((c) =>
    api.get(`/api/v1/campaigns/${encodeURIComponent(c.spec.id)}/results`).then((r) => campaignRow(c, r), (e) => ({ campaign: c.spec.id, name: c.spec.name, error: e }))));
  const rows = results.filter((r) => !r.error);
  const manager = ctx.me.role === 'manager';
  root.append(pageHead('Campaigns', `${list.length} campaigns${manager ? ` · figures of ${ctx.me.store}` : ''} · conversion = a visit within ${rows[0]?.window ?? 7} days`));
  for (const r of results.filter((x) => x.error)) root.append(problem(r.error, `Results of ${r.name}`));
  if (!list.length) {
    root.append(el('p', { class: 'empty' }, 'No campaign yet: HQ creates them with POST /api/v1/campaigns.'));
    return;
  }
  const sum = (k) => rows.reduce((a, c) => a + (c[k] || 0), 0);
  const issued = sum('issued');
  root.append(el('div', { class: 'kpis' },
    kpi('sent', 'Coupons sent', sum('sent'), int(sum('sent')), 'decisions to send'),
    kpi('delivered', 'Delivered', sum('delivered'), int(sum('delivered')), 'confirmed by the app'),
    kpi('redeemed', 'Redeemed', sum('redeemed'), int(sum('redeemed'))),
    kpi('redemption_rate', 'Redemption rate', issued ? sum('redeemed') / issued : null, pct(issued ? sum('redeemed') / issued : null), 'redeemed ÷ issued, all campaigns'),
    kpi('revenue', 'Revenue at the till', sum('revenue_cents'), money(sum('revenue_cents')), 'reported with redemptions'),
    kpi('holdout', 'Held out', sum('holdout'), int(sum('holdout')), 'qualified, not sent: the control group')));

  const ci = (r) => (r.ci ? `${pp(r.ci[0])} to ${pp(r.ci[1])}` : '');
  root.append(el('div', { class: 'grid' },
    card('Results by campaign', 12, table([
      { key: 'name', label: 'Campaign', cell: (c) => [c.name, c.active ? null : el('span', { class: 'note' }, ' (paused)')] },
      { key: 'sent', label: 'Sent', num: true, format: int },
      { key: 'delivered', label: 'Delivered', num: true, format: int },
      { key: 'redeemed', label: 'Redeemed', num: true, format: int },
      { key: 'redemption_rate', label: 'Rate', num: true, format: (v) => pct(v) },
      { key: 'revenue_cents', label: 'Revenue', num: true, format: money },
      { key: 'holdout', label: 'Held out', num: true, format: int },
      { key: 'treated_conversion', label: 'Converted (sent)', num: true, format: (v) => pct(v) },
      { key: 'holdout_conversion', label: 'Converted (held out)', num: true, format: (v) => pct(v) },
      { key: 'lift', label: 'Lift (95% CI)', num: true, format: (v, r) => (v == null ? 'not enough data' : `${pp(v)} (${ci(r)})`) },
    ], rows, { id: 'campaigns-table' })),
    card('Lift over the holdout', 6,
      rows.some((r) => r.lift != null)
        ? forestPlot({ rows: rows.map((r) => ({ label: r.name, estimate: r.lift, low: r.ci?.[0] ?? null, high: r.ci?.[1] ?? null })), format: (v) => pp(v), width: 580, label: 'Lift of each campaign over its holdout with 95% confidence intervals' })
        : el('p', { class: 'empty' }, `No lift yet: no campaign has decisions whose ${rows[0]?.window ?? 7}-day conversion window has closed, with shoppers in both arms.`),
      el('p', { class: 'note' }, 'Conversion of shoppers who were sent the coupon minus that of the randomized holdout who qualified but were not, in percentage points (Newcombe interval). Green: the whole interval is above zero. Decisions count once their conversion window has closed.')),
    card('Redemption rate', 6,
      hBars({ rows: rows.map((c) => ({ label: c.name, value: c.redemption_rate ?? 0 })), format: (v) => pct(v), label: 'Redemption rate per campaign', width: 580, color: COLORS.accent2 })),
    card('By store and segment', 12, table([
      { key: 'campaign', label: 'Campaign' },
      { key: 'part', label: 'Store or segment', cell: (r) => [r.part, r.detail ? el('span', { class: 'note' }, ` (${r.detail})`) : null] },
      { key: 'sent', label: 'Sent', num: true, format: int },
      { key: 'holdout', label: 'Held out', num: true, format: int },
      { key: 'redeemed', label: 'Redeemed', num: true, format: int },
      { key: 'redemption_rate', label: 'Rate', num: true, format: (v) => pct(v) },
      { key: 'revenue_cents', label: 'Revenue', num: true, format: money },
      { key: 'lift', label: 'Lift (95% CI)', num: true, format: (v, r) => (v == null ? 'not enough data' : `${pp(v)} (${ci(r)})`) },
    ], breakdownRows(rows), { id: 'campaign-breakdown-table' }),
    el('p', { class: 'note' }, 'A shopper counts in the store of their first decision, and in every segment their tags match now.'))));
}

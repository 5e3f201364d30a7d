// Browser test of the Dwell dashboard: opens every page in Debian's Chromium (headless, never a
// downloaded browser) against a running dwell-cloud, checks that what is shown equals what the API
// returns for the same query, and saves full-page screenshots.
//
//   node dashboard.test.mjs --base http://127.0.0.1:8080 --token HQ_TOKEN \
//        [--manager-token TOKEN --manager-store STORE_ID] [--out DIR]
//
// The server needs data for the checks to mean something: stores (with floor plans), footfall,
// campaigns with results, shoppers with home positions for the expansion map, gateways that are
// online — `dwell-cloud demo` makes them all (cloud/tests/browser.rs starts one).
// Exit status 0 only if every check passed. The last line reads "dashboard: N passed, N failed".

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
  return acc;
}, []));
const BASE = String(args.base || '').replace(/\/$/, '');
const TOKEN = args.token;
const OUT = args.out || 'screenshots';
if (!BASE || !TOKEN) {
  console.error('usage: node dashboard.test.mjs --base URL --token HQ_TOKEN [--manager-token T --manager-store ID] [--out DIR]');
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });

let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e.stack || e).split('\n').slice(0, 4).join('\n  ')}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function eq(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: shown ${JSON.stringify(actual)}, API says ${JSON.stringify(expected)}`);
}

const intText = (n) => new Intl.NumberFormat('en', { maximumFractionDigits: 0 }).format(n);
const pctText = (x) => `${(x * 100).toFixed(1)}%`;

// ---- the API, read independently of the page -------------------------------------------------

/** What the API answers for `url` (absolute or path). */
async function apiGet(url, token = TOKEN) {
  const u = new URL(url, BASE);
  const res = await fetch(u.href, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${u.pathname}${u.search}: ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

// ---- the browser ---------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage', '--disable-gpu'],
});

/** A browser context whose API requests are recorded; nothing may leave the server's origin. */
async function openContext(name) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1, locale: 'en-GB' });
  const log = { requests: [], problems: [], allowedStatus: new Set() };
  await context.route('**/*', async (route) => {
    const req = route.request();
    const u = new URL(req.url());
    if (u.origin !== new URL(BASE).origin) {
      log.problems.push(`request to another origin: ${req.url()}`);
      return route.abort();
    }
    if (u.pathname.startsWith('/api/')) log.requests.push({ url: u });
    return route.continue();
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => log.problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    // Expected refusals (a manager opening another store) are logged by Chromium as failed loads.
    if (/Failed to load resource: the server responded with a status of (\d+)/.test(t) && log.allowedStatus.has(Number(RegExp.$1))) return;
    log.problems.push(`${name}: console error: ${t}`);
  });
  return { context, page, log };
}

/** The last request the page made to `pathname` (and matching `filter`), as a URL. */
function requested(log, pathname, filter = () => true) {
  const hits = log.requests.filter((r) => r.url.pathname === pathname && filter(r.url));
  assert(hits.length, `the page never asked ${pathname}`);
  return hits[hits.length - 1].url;
}

async function show(page, hash, name) {
  await page.evaluate((h) => { window.location.hash = h; }, hash);
  await page.waitForSelector(`body[data-page="${name}"][data-state="ready"]`, { timeout: 20000 });
  await page.waitForLoadState('networkidle');
}

async function shot(page, file) {
  await page.screenshot({ path: join(OUT, file), fullPage: true });
}

async function cells(page, tableSel, key) {
  return page.$$eval(`${tableSel} tbody tr [data-key="${key}"]`, (els) => els.map((e) => ({ text: e.textContent, value: e.dataset.value })));
}

async function kpiValue(page, key) {
  return page.$eval(`[data-kpi="${key}"] .value`, (e) => ({ text: e.textContent, value: e.dataset.value }));
}

// ---- HQ ------------------------------------------------------------------------------------------

const stores = await apiGet('/api/v1/stores');
const gatewaysAtStart = await apiGet('/api/v1/gateways');
/** Stores with a registered gateway (the demo's pilots: the only ones with footfall). */
const pilots = new Set(gatewaysAtStart.filter((g) => g.registered).map((g) => g.store));
const layouts = new Map();
async function layoutOf(id) {
  if (!layouts.has(id)) layouts.set(id, (await apiGet(`/api/v1/stores/${encodeURIComponent(id)}`)).layout);
  return layouts.get(id);
}

const hq = await openContext('hq');
const { page } = hq;

await check('overview: opens with the token from the address and takes it out of the address', async () => {
  await page.goto(`${BASE}/#token=${TOKEN}`);
  await page.waitForSelector('body[data-page="overview"][data-state="ready"]', { timeout: 20000 });
  await page.waitForLoadState('networkidle');
  const href = await page.evaluate(() => window.location.href);
  assert(!href.includes(TOKEN), `the token is still in the address: ${href}`);
  eq(await page.$eval('#who [data-role]', (e) => e.dataset.role), 'hq', 'role shown');
});

await check('overview: KPI tiles equal the API totals', async () => {
  const f = await apiGet(requested(hq.log, '/api/v1/footfall').href);
  assert(f.total.visitors > 0, 'the server has footfall to show');
  for (const k of ['visitors', 'passersby', 'engaged']) {
    const v = await kpiValue(page, k);
    eq(v.value, String(f.total[k]), `${k} (raw)`);
    eq(v.text, intText(f.total[k]), `${k} (text)`);
  }
  const c = await kpiValue(page, 'capture_rate');
  eq(c.value, String(f.total.capture_rate), 'capture rate (raw)');
  eq(c.text, pctText(f.total.capture_rate), 'capture rate (text)');
  const t = await kpiValue(page, 'traffic_index');
  eq(t.value, String(f.total.traffic.index), 'traffic index (raw)');
  eq(t.text, intText(f.total.traffic.index), 'traffic index (text)');
});

await check('overview: the trend table has every period with the API numbers', async () => {
  const f = await apiGet(requested(hq.log, '/api/v1/footfall').href);
  const periods = await page.$$eval('#footfall-table tbody tr th', (els) => els.map((e) => e.textContent));
  eq(periods.length, f.buckets.length, 'rows');
  eq(periods.join(','), f.buckets.map((r) => r.local).join(','), 'periods');
  for (const [key, get] of [['visitors', (b) => b.visitors], ['passersby', (b) => b.passersby], ['traffic_index', (b) => b.traffic.index]]) {
    const shown = (await cells(page, '#footfall-table', key)).map((c) => c.value);
    eq(shown.join(','), f.buckets.map((b) => String(get(b))).join(','), key);
  }
  assert(await page.$$eval('svg.chart path.series', (e) => e.length) >= 4, 'the trend charts have lines');
  assert(await page.$$eval('svg.chart rect', (e) => e.length) >= f.buckets.filter((b) => b.visitors > 0).length, 'the dwell chart has bars');
});

await check('overview: the default period ends on the last day with data and starts no earlier than the first', async () => {
  const e = await apiGet('/api/v1/footfall/extent');
  assert(e.first && e.last, `the server has footfall days: ${JSON.stringify(e)}`);
  const u = requested(hq.log, '/api/v1/footfall');
  eq(u.searchParams.get('to'), e.last, 'to');
  const from = u.searchParams.get('from');
  assert(from >= e.first && from <= e.last, `from ${from} is outside ${e.first}..${e.last}`);
  const f = await apiGet(u.href);
  assert(f.buckets.length <= 28, `${f.buckets.length} days by default`);
  eq(requested(hq.log, '/api/v1/footfall/stores').searchParams.get('to'), e.last, 'the stores table covers the same period');
});

/** The stores table's rows (hidden ones too): store id, visible, the "no data" note, visitors. */
async function storeRows(p) {
  return p.$$eval('#stores-table tbody tr', (trs) => trs.map((tr) => ({
    store: decodeURIComponent(tr.querySelector('th a').getAttribute('href').replace('#/store/', '')),
    visible: !tr.hidden && tr.getBoundingClientRect().height > 0,
    note: tr.dataset.note != null ? tr.querySelector('td').textContent : null,
    visitors: tr.querySelector('[data-key="visitors"]')?.dataset.value ?? null,
  })));
}

await check('overview: the stores table ranks stores by visitors with the API numbers, top ten first', async () => {
  const r = await apiGet(requested(hq.log, '/api/v1/footfall/stores').href);
  const api = new Map(r.stores.map((s) => [s.store, s.total]));
  const rows = await storeRows(page);
  eq(rows.length, r.stores.length, 'rows (shown and hidden)');
  eq(new Set(rows.map((x) => x.store)).size, api.size, 'distinct stores');
  const noData = (t) => !t.visits && !t.static_visits && !t.traffic.counted_minutes && !t.traffic.randomized_visits && !t.door.entered && !t.door.exited && !t.app_presence_minutes;
  const withData = r.stores.filter((s) => !noData(s.total));
  assert(withData.length > 0, 'some store has footfall');
  assert(withData.every((s) => pilots.has(s.store)), `footfall only where a gateway is: ${withData.map((s) => s.store)}`);
  for (const [i, row] of rows.entries()) {
    const t = api.get(row.store);
    assert(t, `store ${row.store} shown but not in the API`);
    if (noData(t)) {
      eq(row.note, 'no gateway data in this period', `row of ${row.store} (no data)`);
    } else {
      eq(row.note, null, `row of ${row.store} (has data)`);
      eq(row.visitors, String(t.visitors), `visitors of ${row.store}`);
      assert(i < withData.length, `${row.store} (with data) is listed after a store without`);
    }
  }
  const shown = rows.filter((x) => x.note == null).map((x) => Number(x.visitors));
  assert(shown.every((v, i) => i === 0 || shown[i - 1] >= v), `not most visitors first: ${shown}`);
  eq(rows[0].store, r.stores[0].store, 'the first store');
  eq(rows.filter((x) => x.visible).map((x) => x.store).join(','), rows.slice(0, Math.min(10, rows.length)).map((x) => x.store).join(','), 'the top ten are shown');
});
await shot(page, 'overview.png');

await check('overview: "show all" lists every store, and back', async () => {
  const n = (await storeRows(page)).length;
  if (n <= 10) return;
  const toggle = page.locator('button[data-toggle="stores"]');
  eq(await toggle.textContent(), `Show all ${intText(n)} stores`, 'toggle');
  await toggle.click();
  eq((await storeRows(page)).filter((x) => x.visible).length, n, 'rows shown after "show all"');
  eq(await toggle.getAttribute('aria-expanded'), 'true', 'aria-expanded');
  await toggle.click();
  eq((await storeRows(page)).filter((x) => x.visible).length, 10, 'rows shown after "top ten"');
});

await check('overview: week granularity re-queries and redraws', async () => {
  await page.selectOption('select[name="granularity"]', 'week');
  await Promise.all([
    page.waitForFunction(() => window.location.hash.includes('granularity=week')),
    page.click('form.controls button[type="submit"]'),
  ]);
  await page.waitForSelector('body[data-page="overview"][data-state="ready"]');
  await page.waitForLoadState('networkidle');
  const u = requested(hq.log, '/api/v1/footfall', (x) => x.searchParams.get('granularity') === 'week');
  const f = await apiGet(u.href);
  eq((await kpiValue(page, 'visitors')).value, String(f.total.visitors), 'weekly visitors');
  eq(await page.$$eval('#footfall-table tbody tr', (e) => e.length), f.buckets.length, 'weekly rows');
});

// A pilot store (a gateway, so footfall) with a floor plan.
const withLayout = stores.find((s) => s.has_layout && pilots.has(s.id)) || stores.find((s) => s.has_layout) || stores[0];
await check(`store detail (${withLayout?.id}): floor plan heatmap, zones, paths and hourly figures equal the API`, async () => {
  assert(withLayout, 'the server has no store');
  assert(withLayout.has_layout && pilots.has(withLayout.id), 'the server has a store with a floor plan and a gateway');
  await show(page, `#/store/${encodeURIComponent(withLayout.id)}`, 'store');
  eq(await page.$eval('h1', (e) => e.textContent), withLayout.name, 'store name');
  const layout = await layoutOf(withLayout.id);
  const z = await apiGet(requested(hq.log, `/api/v1/stores/${withLayout.id}/zones`).href);
  const drawn = await page.$$eval('svg.floorplan g[data-zone]', (els) => els.map((e) => [e.dataset.zone, e.dataset.value]));
  eq(drawn.length, layout.zones.length, 'zones drawn on the floor plan');
  assert(z.zones.some((x) => x.dwell_s > 0), 'the server has zone dwell to show');
  for (const [zone, value] of drawn) {
    const api = z.zones.find((x) => x.zone === zone);
    eq(value, api && (api.stays > 0 || api.dwell_s > 0) ? String(api.dwell_s) : '', `heat of zone ${zone}`);
  }
  eq(await page.$$eval('svg.floorplan circle', (e) => e.length), (layout.receivers || []).length, 'receivers drawn');
  eq(await page.$$eval('#zones-table tbody tr', (e) => e.length), z.zones.length, 'zone table rows');
  const visits = (await cells(page, '#zones-table', 'visits')).map((c) => c.value);
  eq(visits.join(','), z.zones.map((x) => String(x.visits)).join(','), 'zone visits');

  const p = await apiGet(requested(hq.log, `/api/v1/stores/${withLayout.id}/paths`).href);
  assert(p.paths.length > 0, 'the server has paths to show');
  eq(await page.$$eval('#paths-table tbody tr', (e) => e.length), p.paths.length, 'path rows');
  const counts = (await cells(page, '#paths-table', 'count')).map((c) => c.value);
  eq(counts.join(','), p.paths.map((x) => String(x.visits)).join(','), 'path counts');
  assert(p.paths.length === 0 || (await page.$$eval('figure svg.chart rect', (e) => e.length)) > 0, 'the Sankey has nodes');

  const h = await apiGet(requested(hq.log, '/api/v1/footfall', (x) => x.searchParams.get('granularity') === 'hour').href);
  eq(await page.$$eval('#hourly-table tbody tr', (e) => e.length), h.buckets.length, 'hourly rows');
  const d = await apiGet(requested(hq.log, '/api/v1/footfall', (x) => x.searchParams.get('granularity') === 'day' && x.searchParams.get('store') === withLayout.id).href);
  eq((await kpiValue(page, 'visitors')).value, String(d.total.visitors), 'store visitors over the period');
  assert(d.total.visitors > 0, 'the store has visitors in its default period');
  eq(d.from, z.from, 'KPIs and zones cover the same period');
  eq(d.to, (await apiGet(`/api/v1/footfall/extent?store=${encodeURIComponent(withLayout.id)}`)).last, 'the period ends on the store\'s last day with data');
  eq(await page.$('[data-no-data]'), null, 'no "no gateway data" notice');
  const g = await apiGet(`/api/v1/gateways?store=${encodeURIComponent(withLayout.id)}`);
  const shownGw = await page.$$eval('section[aria-labelledby="card-gateways"] tbody tr th', (els) => els.map((e) => e.textContent));
  eq(shownGw.join(','), g.map((x) => x.gateway).join(','), 'store gateways');
});
await shot(page, 'store.png');

const withoutGateway = stores.find((s) => !pilots.has(s.id));
if (withoutGateway) {
  await check(`store detail (${withoutGateway.id}, no gateway): says there is no gateway data`, async () => {
    await show(page, `#/store/${encodeURIComponent(withoutGateway.id)}`, 'store');
    eq(await page.$eval('h1', (e) => e.textContent), withoutGateway.name, 'store name');
    const d = await apiGet(requested(hq.log, '/api/v1/footfall', (x) => x.searchParams.get('granularity') === 'day' && x.searchParams.get('store') === withoutGateway.id).href);
    eq((await kpiValue(page, 'visitors')).value, String(d.total.visitors), 'visitors');
    eq(d.total.visits, 0, 'visits (API)');
    assert(await page.$('[data-no-data]'), 'no "no gateway data" notice');
    assert((await page.textContent('section[aria-labelledby="card-gateways"]')).includes('No gateway is registered'), 'gateways card');
  });
  await shot(page, 'store-without-gateway.png');
}

await check('stores list: one card per store', async () => {
  await show(page, '#/store', 'store');
  eq(await page.$$eval('.store-list [data-store]', (e) => e.length), stores.length, 'store cards');
});

await check('campaigns: table and totals equal the API', async () => {
  await show(page, '#/campaigns', 'campaigns');
  const list = await apiGet('/api/v1/campaigns');
  assert(list.length > 0, 'the server has campaigns to show');
  const full = [];
  for (const c of list) full.push(await apiGet(`/api/v1/campaigns/${encodeURIComponent(c.spec.id)}/results`));
  const results = full.map((r) => r.total);
  eq(await page.$$eval('#campaigns-table tbody tr', (e) => e.length), list.length, 'campaign rows');
  const sent = (await cells(page, '#campaigns-table', 'sent')).map((c) => c.value);
  eq(sent.join(','), results.map((t) => String(t.decisions.sent)).join(','), 'sent per campaign');
  const redeemed = (await cells(page, '#campaigns-table', 'redeemed')).map((c) => c.value);
  eq(redeemed.join(','), results.map((t) => String(t.coupons.redeemed)).join(','), 'redeemed per campaign');
  const lifts = (await cells(page, '#campaigns-table', 'lift')).map((c) => c.value);
  eq(lifts.join(','), results.map((t) => (t.lift.lift == null ? '' : String(t.lift.lift))).join(','), 'lift per campaign');
  eq((await kpiValue(page, 'sent')).value, String(results.reduce((a, t) => a + t.decisions.sent, 0)), 'total sent');
  eq(await page.$$eval('section[aria-labelledby="card-lift-over-the-holdout"] svg circle', (e) => e.length),
    results.filter((t) => t.lift.lift != null).length, 'lift estimates drawn');
  // Per store and per segment: every part with a decision, in the API's order, its sent count.
  const parts = full.flatMap((r) => [...r.stores, ...r.segments])
    .filter((p) => p.decisions.sent + p.decisions.holdout > 0);
  assert(parts.length > 0, 'the API has per-store or per-segment figures to show');
  const partSent = (await cells(page, '#campaign-breakdown-table', 'sent')).map((c) => c.value);
  eq(partSent.join(','), parts.map((p) => String(p.decisions.sent)).join(','), 'sent per store and segment');
});
await shot(page, 'campaigns.png');

await check('expansion: the map has its regions, stores and candidates, as the API says', async () => {
  await show(page, '#/expansion', 'expansion');
  const fc = await apiGet(requested(hq.log, '/api/v1/expansion').href);
  const kind = (f) => f.properties?.kind;
  const regions = fc.features.filter((f) => kind(f) === 'region');
  const storesF = fc.features.filter((f) => kind(f) === 'store');
  const cands = fc.features.filter((f) => kind(f) === 'candidate').sort((a, b) => a.properties.rank - b.properties.rank);
  assert(regions.length > 0 && storesF.length > 0 && cands.length > 0, 'the analysis has regions, stores and candidates');
  eq(await page.$$eval('[data-layer="regions"] path.region', (e) => e.length), regions.length, 'regions drawn');
  eq(await page.$$eval('[data-layer="stores"] circle', (e) => e.length), storesF.length, 'stores drawn');
  eq(await page.$$eval('[data-layer="candidates"] g[data-rank]', (e) => e.length), cands.length, 'candidates drawn');
  const values = await page.$$eval('[data-layer="regions"] path.region', (els) => els.map((e) => [e.dataset.id, e.dataset.value]));
  for (const [id, v] of values) {
    const f = regions.find((x) => String(x.properties.id ?? x.id) === id);
    assert(f, `region ${id} drawn but not in the API`);
    const c = f.properties.customers;
    eq(v, f.properties.suppressed || c == null ? '' : String(c), `customers of region ${id}`);
  }
  eq((await kpiValue(page, 'customers')).value, String(fc.totals.customers), 'customers (total)');
  eq((await kpiValue(page, 'unserved_share')).value, String(fc.totals.unserved_share), 'unserved share (total)');
  const ranks = (await cells(page, '#candidates-table', 'rank')).map((c) => c.value);
  eq(ranks.join(','), cands.map((c) => String(c.properties.rank)).join(','), 'candidate ranks');
  const first = await page.$eval('#candidates-table tbody tr [data-key="name"]', (e) => e.textContent);
  assert(first.startsWith(cands[0].properties.name), `first candidate shown ${first}, API ${cands[0].properties.name}`);
  const box = await page.$eval('svg.map', (e) => e.getBoundingClientRect().width);
  assert(box > 600, `the map is ${box}px wide`);
});
await shot(page, 'expansion.png');

await check('expansion: colouring by another metric re-colours the regions', async () => {
  await page.selectOption('select[name="metric"]', 'unserved_share');
  await Promise.all([page.waitForFunction(() => window.location.hash.includes('metric=unserved_share')), page.click('form.controls button[type="submit"]')]);
  await page.waitForSelector('body[data-page="expansion"][data-state="ready"]');
  const fc = await apiGet(requested(hq.log, '/api/v1/expansion').href);
  const some = fc.features.find((f) => f.properties?.kind === 'region' && !f.properties.suppressed);
  const v = await page.$eval(`[data-layer="regions"] path.region[data-id="${some.properties.id ?? some.id}"]`, (e) => e.dataset.value);
  const u = some.properties.unserved_share;
  eq(v, u == null ? '' : String(u), 'unserved share');
});

await check('gateways: one row per gateway with the API status, backlog and version; the pilots\' are online', async () => {
  // The demo's gateways report their status when they connect: give them a moment.
  for (let i = 0; i < 60; i++) {
    const g = await apiGet('/api/v1/gateways');
    if (g.filter((x) => x.registered).every((x) => x.online === true)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await show(page, '#/gateways', 'gateways');
  const g = await apiGet('/api/v1/gateways');
  assert(pilots.size > 0, 'the server has registered gateways');
  for (const st of pilots) assert(g.some((x) => x.store === st), `no gateway of ${st}`);
  const rows = await page.$$eval('#gateways-table tbody tr', (trs) => trs.map((tr) => ({
    gateway: tr.querySelector('th').textContent,
    health: tr.querySelector('[data-health]').dataset.health,
    backlog: tr.querySelector('[data-key="backlog"]').dataset.value,
    version: tr.querySelector('[data-key="version"]').textContent,
  })));
  eq(rows.length, g.length, 'gateway rows');
  for (const gw of g) {
    const r = rows.find((x) => x.gateway === gw.gateway);
    assert(r, `gateway ${gw.gateway} not shown`);
    eq(r.backlog, gw.backlog == null ? '' : String(gw.backlog), `backlog of ${gw.gateway}`);
    eq(r.version, gw.version ?? '—', `version of ${gw.gateway}`);
    const expected = gw.online === false ? 'offline' : gw.online == null ? 'unknown' : Date.now() - (gw.last_seen_ms ?? 0) > 600000 ? 'silent' : 'online';
    eq(r.health, expected, `status of ${gw.gateway}`);
    if (gw.registered) eq(r.health, 'online', `status of the pilot gateway ${gw.gateway}`);
  }
  eq((await kpiValue(page, 'online')).value, String(g.filter((x) => x.online === true && Date.now() - (x.last_seen_ms ?? 0) <= 600000).length), 'online count');
  eq((await kpiValue(page, 'total')).value, String(g.length), 'gateway count');
  const d = await apiGet('/api/v1/dead-letters/summary');
  if (d.total) eq(await page.$$eval('#dead-letters-table tbody tr', (e) => e.length), d.by_reason.length, 'dead-letter reasons');
});
await shot(page, 'gateways.png');

await check('a phone-sized screen: no page scrolls sideways', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [hash, name] of [['#/overview', 'overview'], ['#/store/' + encodeURIComponent(withLayout.id), 'store'], ['#/gateways', 'gateways']]) {
    await show(page, hash, name);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert(width <= 392, `${name} is ${width}px wide on a 390px screen`);
    if (name === 'overview') await shot(page, 'overview-phone.png');
  }
  await page.setViewportSize({ width: 1400, height: 900 });
});

await check('hq: no console errors, no page errors, no request left this origin', async () => {
  assert(!hq.log.problems.length, hq.log.problems.join('\n'));
});
await hq.context.close();

// ---- a store manager -------------------------------------------------------------------------------

if (args['manager-token']) {
  const M = args['manager-token'];
  const own = args['manager-store'];
  const m = await openContext('manager');
  m.log.allowedStatus.add(403);
  await check(`manager (${own}): sees only its store`, async () => {
    await m.page.goto(`${BASE}/#token=${M}`);
    await m.page.waitForSelector('body[data-page="overview"][data-state="ready"]', { timeout: 20000 });
    await m.page.waitForLoadState('networkidle');
    eq(await m.page.$eval('#who [data-role]', (e) => e.dataset.role), 'manager', 'role');
    eq(await m.page.$('select[name="scope"]'), null, 'no store picker for a manager');
    eq(await m.page.$('#stores-table'), null, 'no chain ranking for a manager');
    const u = requested(m.log, '/api/v1/footfall');
    eq(u.searchParams.get('store'), own, 'footfall asked for the own store');
    const f = await apiGet(u.href, M);
    eq((await kpiValue(m.page, 'visitors')).value, String(f.total.visitors), 'visitors');
    assert(f.total.visitors > 0, 'the manager\'s store has visitors');
    eq(u.searchParams.get('to'), (await apiGet('/api/v1/footfall/extent', M)).last, 'the period ends on the store\'s last day with data');
    eq(await m.page.$eval('a[data-page="store"]', (e) => e.getAttribute('href')), `#/store/${encodeURIComponent(own)}`, 'My store link');
    eq(await m.page.$eval('a[data-page="expansion"]', (e) => e.parentElement.hidden), true, 'expansion hidden');
  });
  await shot(m.page, 'manager-overview.png');
  await check('manager: gateways of its own store only', async () => {
    await show(m.page, '#/gateways', 'gateways');
    const storesShown = await m.page.$$eval('#gateways-table tbody tr [data-key="store_name"] a', (els) => els.map((e) => e.getAttribute('href')));
    assert(storesShown.length > 0, 'the manager\'s store has a gateway');
    assert(storesShown.every((h) => h === `#/store/${encodeURIComponent(own)}`), `other stores shown: ${storesShown}`);
    eq(await m.page.$('#dead-letters-table'), null, 'no dead letters for a manager');
  });
  const other = stores.find((s) => s.id !== own);
  if (other) {
    await check(`manager: another store (${other.id}) is refused with a clear message`, async () => {
      await m.page.evaluate((h) => { window.location.hash = h; }, `#/store/${encodeURIComponent(other.id)}`);
      await m.page.waitForSelector('body[data-page="store"][data-state="error"], body[data-page="store"][data-state="ready"]');
      assert(await m.page.$('[data-forbidden]'), 'no "not visible with this token" notice');
      const h1 = await m.page.$('h1');
      assert(!h1 || (await h1.textContent()) !== other.name, 'the other store was shown');
    });
    await shot(m.page, 'manager-other-store.png');
  }
  await check('manager: no console errors beyond the refusal, nothing left this origin', async () => {
    assert(!m.log.problems.length, m.log.problems.join('\n'));
  });
  await m.context.close();
}

await check('a wrong token gets the sign-in form, not a broken page', async () => {
  const w = await openContext('wrong-token');
  w.log.allowedStatus.add(401);
  await w.page.goto(`${BASE}/#token=${'0'.repeat(64)}`);
  await w.page.waitForSelector('body[data-state="signin"]');
  assert((await w.page.textContent('.signin')).includes('refused'), 'no refusal message');
  await shot(w.page, 'signin.png');
  assert(!w.log.problems.length, w.log.problems.join('\n'));
  await w.context.close();
});

await browser.close();

console.log(`screenshots in ${OUT}`);
console.log(`dashboard: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

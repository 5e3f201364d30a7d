// The dashboard's shell: takes the token from the address, asks the API who it belongs to, and
// routes `#/page/arg?params` to a page module. Pages render into a fresh container that replaces
// the old one only if no newer navigation started meanwhile.
//
// For tests and scripts: <body data-page="…" data-state="loading|ready|error">.

import { adoptTokenFromUrl, token, setToken, forgetToken, get, ApiError } from './api.js';
import { el } from './format.js';
import { problem } from './ui.js';
import * as overview from './pages/overview.js';
import * as store from './pages/store.js';
import * as campaigns from './pages/campaigns.js';
import * as expansion from './pages/expansion.js';
import * as gateways from './pages/gateways.js';

const PAGES = { overview, store, campaigns, expansion, gateways };

let me = null;
let generation = 0;

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '') || '/overview';
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || 'overview', args: parts.slice(1), params: new URLSearchParams(query || '') };
}

function hashFor(name, args, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, v);
  const path = ['', name, ...args.map(encodeURIComponent)].join('/');
  return `#${path}${q.toString() ? `?${q}` : ''}`;
}

function setState(state, name) {
  document.body.dataset.state = state;
  if (name) document.body.dataset.page = name;
}

function signIn(main, message) {
  setState('signin', 'signin');
  const input = el('input', { type: 'password', name: 'token', autocomplete: 'off', 'aria-label': 'API token', placeholder: '64 hex digits' });
  const form = el('form', {}, input, el('button', { class: 'primary', type: 'submit' }, 'Open'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!input.value.trim()) return;
    setToken(input.value);
    me = null;
    route();
  });
  main.replaceChildren(el('section', { class: 'card signin' },
    el('h1', {}, 'Dwell dashboard'),
    message ? el('p', { class: 'error', role: 'alert' }, message) : null,
    el('p', {}, 'Paste an API token. Operators issue one with ', el('code', {}, 'dwell-cloud token --role hq'),
      ' (or --role manager --store ID for one store); this page’s address followed by ', el('code', {}, '#token=TOKEN'), ' opens the dashboard signed in.'),
    form));
  input.focus();
}

function renderWho() {
  const who = document.getElementById('who');
  const label = me.role === 'manager' ? `Manager · ${me.store}` : me.role === 'hq' ? 'Headquarters' : me.role;
  who.replaceChildren(el('span', { dataset: { role: me.role } }, label),
    el('button', { type: 'button', onclick: () => { forgetToken(); me = null; who.replaceChildren(); route(); } }, 'Sign out'));
  // A manager has one store: the Stores link goes straight to it.
  const storeLink = document.querySelector('a[data-page="store"]');
  if (me.role === 'manager' && me.store) {
    storeLink.href = `#/store/${encodeURIComponent(me.store)}`;
    storeLink.textContent = 'My store';
  }
  const exp = document.querySelector('a[data-page="expansion"]');
  exp.parentElement.hidden = me.role !== 'hq';
}

async function route() {
  const gen = ++generation;
  const main = document.getElementById('main');
  const { name, args, params } = parseHash();
  for (const a of document.querySelectorAll('.top nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!token()) return signIn(main);
  setState('loading', name);
  if (!me) {
    try {
      me = await get('/api/v1/me');
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        forgetToken();
        return signIn(main, `That token was refused: ${e.message}`);
      }
      main.replaceChildren(problem(e, 'Signing in'));
      return setState('error', name);
    }
    renderWho();
  }
  const page = PAGES[name];
  if (!page) {
    main.replaceChildren(el('p', { class: 'error' }, `There is no page "${name}". `, el('a', { href: '#/overview' }, 'Go to the overview.')));
    return setState('error', name);
  }
  const container = el('div', { dataset: { page: name } });
  const ctx = {
    me,
    args,
    params,
    navigate(newParams, newArgs = args) {
      window.location.hash = hashFor(name, newArgs, newParams);
    },
    href: hashFor,
  };
  let state = 'ready';
  try {
    await page.render(container, ctx);
  } catch (e) {
    if (!(e instanceof ApiError)) console.error(e);
    container.replaceChildren(problem(e, page.title || name));
    state = 'error';
  }
  if (gen !== generation) return; // a newer navigation owns the page now
  main.replaceChildren(container);
  document.title = `${page.title || name} — Dwell`;
  setState(state, name);
  main.focus({ preventScroll: true });
}

adoptTokenFromUrl();
window.addEventListener('hashchange', route);
route();

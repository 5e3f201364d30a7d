// The API client: the token from the page's URL (once) or sessionStorage, sent as a Bearer token;
// errors become ApiError with the server's code and message.

const KEY = 'dwell.token';

export class ApiError extends Error {
  constructor(status, code, message, path) {
    super(message);
    this.status = status;
    this.code = code;
    this.path = path;
  }

  /** The server has no such endpoint (not deployed in this build). */
  get missing() {
    return this.status === 404 && this.code === 'no_route';
  }
}

/**
 * Takes `?token=` or `#token=` out of the address bar (so it isn't bookmarked, shared or kept in
 * history) into sessionStorage (gone when the tab closes).
 */
export function adoptTokenFromUrl() {
  const url = new URL(window.location.href);
  let token = url.searchParams.get('token');
  let hash = url.hash;
  const m = /(?:^#|[&?])token=([^&]+)/.exec(hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    hash = hash.replace(/[#&?]?token=[^&]+/, '').replace(/^#?&/, '#');
    if (hash === '#' || hash === '') hash = '';
  }
  if (token) {
    url.searchParams.delete('token');
    sessionStorage.setItem(KEY, token.trim());
    history.replaceState(null, '', url.pathname + url.search + (hash || '#/overview'));
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  sessionStorage.setItem(KEY, t.trim());
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

/** GET an API path with query parameters (null/'' values left out); resolves to the JSON. */
export async function get(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, v);
  const url = q.toString() ? `${path}?${q}` : path;
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let res;
  try {
    res = await fetch(url, { headers });
  } catch (e) {
    throw new ApiError(0, 'network', `The server can't be reached (${e.message}).`, path);
  }
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const err = body && body.error ? body.error : { code: `http_${res.status}`, message: text || res.statusText };
    throw new ApiError(res.status, err.code, err.message, path);
  }
  return body;
}

/** Like get(), but a missing endpoint resolves to null instead of throwing. */
export async function getOptional(path, params) {
  try {
    return await get(path, params);
  } catch (e) {
    if (e instanceof ApiError && e.missing) return null;
    throw e;
  }
}

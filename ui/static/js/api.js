// api.js: the UI's only way to the server. Every call goes to the same
// origin's public /v1 API with the signed-in key as a bearer token, and every
// refusal comes back as a Problem carrying the API's problem details.

const keyName = 'stockd.apiKey';

/** The API key of this tab, or "" (kept in sessionStorage: gone when the tab closes). */
export function getKey() {
  return sessionStorage.getItem(keyName) || '';
}

/** Keeps key for this tab; an empty key forgets it. */
export function setKey(key) {
  if (key) sessionStorage.setItem(keyName, key);
  else sessionStorage.removeItem(keyName);
}

/** Problem is an API refusal: RFC 9457 problem details (title, detail, status, code, lines…). */
export class Problem extends Error {
  constructor(p) {
    super(p.detail || p.title || 'request failed');
    this.name = 'Problem';
    Object.assign(this, p);
  }
}

/** headers returns the headers of a call: the key, when there is one. */
export function authHeaders(extra = {}) {
  const h = { ...extra };
  const key = getKey();
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

/**
 * call sends one request to the API and returns its JSON answer (and the
 * status, for 200 replay versus 201 created), or throws a Problem.
 * path is a path under the origin, such as "/v1/skus"; query values that
 * are arrays repeat the parameter.
 */
export async function call(method, path, { body, query, headers, signal } = {}) {
  if (!path.startsWith('/v1/')) throw new Error('the UI only calls /v1 routes');
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '') continue;
      for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
    }
    const s = q.toString();
    if (s) url += '?' + s;
  }
  const init = { method, headers: authHeaders({ Accept: 'application/json', ...headers }), signal, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new Problem({ title: 'The server cannot be reached', detail: String(e.message || e), status: 0, code: 'network' });
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    if (json && typeof json === 'object' && (json.title || json.detail)) {
      throw new Problem({ status: res.status, ...json, retryAfter: res.headers.get('Retry-After') });
    }
    throw new Problem({ title: res.statusText || 'Request failed', detail: text.slice(0, 300), status: res.status, code: 'http_' + res.status });
  }
  if (json === undefined) throw new Problem({ title: 'Unexpected answer', detail: 'the server did not answer JSON', status: res.status, code: 'bad_answer' });
  return { status: res.status, body: json };
}

/** get is call('GET', …) returning only the body. */
export async function get(path, query, signal) {
  return (await call('GET', path, { query, signal })).body;
}

/** seg escapes one path segment (SKUs and ids may hold spaces and more). */
export function seg(s) {
  return encodeURIComponent(s);
}

// app.js: the admin UI's entry point: signing in, the screens' router and
// the live-feed status in the header.

import { call, getKey, setKey, Problem } from './api.js';
import { h, replace } from './dom.js';
import * as feed from './feed.js';
import { clearAlert, notify, showProblem } from './shell.js';
import { stockScreen } from './screens/stock.js';
import { skuScreen } from './screens/sku.js';
import { reservationsScreen } from './screens/reservations.js';
import { opsScreen } from './screens/ops.js';
import { feedScreen } from './screens/feed.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const session = document.getElementById('session');
const who = document.getElementById('who');
const liveStatus = document.getElementById('live-status');

let signedIn = false;
let leave = null; // undoes what the current screen set up (feed listeners, timers)

// probe asks the API whether the current key (or none) may read stock. The
// answer decides between the sign-in screen and the UI: a server without
// keys answers 200 to no key at all (development mode).
async function probe() {
  try {
    await call('GET', '/v1/skus', { query: { limit: 1 } });
    return { ok: true };
  } catch (e) {
    if (e instanceof Problem && e.status === 401) return { ok: false, problem: e };
    // 403 (a key without stock:read) or a server that cannot list: the key
    // is good; screens show what it may not do as they are used.
    return { ok: true, problem: e };
  }
}

async function boot() {
  document.getElementById('logout').addEventListener('click', signOut);
  feed.onState(showFeedState);
  window.addEventListener('hashchange', route);
  const { ok, problem } = await probe();
  if (ok) {
    enter(problem);
  } else {
    if (getKey()) setKey(''); // a stored key the server no longer knows
    loginScreen(null);
  }
}

function loginScreen(problem) {
  signedIn = false;
  nav.hidden = true;
  session.hidden = true;
  feed.stop();
  if (leave) leave();
  leave = null;
  const input = h('input', { id: 'login-key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = h('form', { id: 'login-form', class: 'card', novalidate: true },
    h('h2', {}, 'Sign in'),
    h('p', {}, 'This server needs an API key. The UI calls the same /v1 API with it, so it can do what the key\u2019s scopes allow. The key stays in this browser tab only.'),
    h('div', { class: 'field' }, h('label', { for: 'login-key' }, 'API key'), input),
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearAlert();
    const key = input.value.trim();
    if (!key) {
      showProblem(new Problem({ title: 'No key', detail: 'Type or paste an API key (stockd keys new prints one).', status: 0 }));
      return;
    }
    setKey(key);
    const res = await probe();
    if (!res.ok) {
      setKey('');
      showProblem(res.problem, null, 'Sign-in refused');
      input.focus();
      return;
    }
    enter(res.problem);
  });
  replace(main, form);
  if (problem) showProblem(problem);
  input.focus();
}

function enter(problem) {
  signedIn = true;
  nav.hidden = false;
  session.hidden = false;
  const key = getKey();
  replace(who, key ? 'Signed in with an API key' : 'Open server: no keys (development mode)');
  document.getElementById('logout').hidden = !key;
  clearAlert();
  feed.start();
  // replaceState, not location.hash: no hashchange to route a second time.
  if (!location.hash || location.hash === '#' || location.hash === '#/login') history.replaceState(null, '', '#/stock');
  route();
  if (problem) showProblem(problem, null, 'This key cannot read stock');
}

function signOut() {
  setKey('');
  notify('Signed out.');
  location.hash = '#/login';
  loginScreen(null);
}

function showFeedState(s) {
  const text = {
    off: '',
    connecting: 'Feed: connecting\u2026',
    live: 'Feed: live',
    retrying: 'Feed: reconnecting\u2026',
    refused: 'Feed: refused',
  }[s.status];
  liveStatus.textContent = text;
  liveStatus.dataset.status = s.status;
  if (s.status === 'refused' && s.problem) showProblem(s.problem, null, 'The live feed');
}

// The screens, by the first segment of the hash: #/stock, #/sku/A, ...
const screens = {
  stock: stockScreen,
  sku: skuScreen,
  reservations: reservationsScreen,
  ops: opsScreen,
  feed: feedScreen,
};

function route() {
  if (!signedIn) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const name = parts[0] || 'stock';
  const screen = screens[name] || screens.stock;
  if (leave) leave();
  leave = null;
  clearAlert();
  notify('');
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === '#/' + name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const args = parts.slice(1).map(decodeURIComponent);
  const el = h('section', { class: 'screen', id: 'screen-' + name });
  replace(main, el);
  leave = screen(el, args) || null;
}

boot().catch((e) => showProblem(e));

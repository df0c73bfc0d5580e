// The live feed screen: the change feed's events as they happen (the last
// 200), newest first, with a filter by type or SKU.

import { h, replace, when } from '../dom.js';
import { describe } from '../events.js';
import * as feed from '../feed.js';

export function feedScreen(el) {
  const filter = h('input', { id: 'feed-filter', type: 'search', autocomplete: 'off', placeholder: 'StockReceived, APPLE, w1\u2026' });
  const paused = h('input', { id: 'feed-pause', type: 'checkbox' });
  const body = h('tbody', {});
  const count = h('p', { class: 'muted', id: 'feed-count', 'aria-live': 'off' });
  el.append(h('h2', {}, 'Live feed'),
    h('p', { class: 'muted' }, 'Every change to stock, as the server makes it durable (GET /v1/feed as a stream, from when you signed in).'),
    h('div', { class: 'inline' },
      h('div', { class: 'field' }, h('label', { for: 'feed-filter' }, 'Show only events mentioning'), filter),
      h('div', { class: 'field check' }, paused, h('label', { for: 'feed-pause' }, 'Pause'))),
    count,
    h('div', { class: 'scroll' }, h('table', { id: 'feed-table' },
      h('thead', {}, h('tr', {}, ...['Time', 'Event', 'SKU', 'What', 'By'].map((c) => h('th', { scope: 'col' }, c)))),
      body)));

  const matches = (ev) => {
    const f = filter.value.trim().toLowerCase();
    if (!f) return true;
    return [ev.type, ev.sku, describe(ev), ev.actor].some((s) => (s || '').toLowerCase().includes(f));
  };
  const row = (ev) => h('tr', { 'data-type': ev.type, 'data-sku': ev.sku || '' },
    h('td', {}, when(ev.time)), h('td', {}, ev.type),
    h('td', {}, ev.sku ? h('a', { href: '#/sku/' + encodeURIComponent(ev.sku) }, ev.sku) : ''),
    h('td', {}, describe(ev)), h('td', {}, ev.actor || ''));

  function render() {
    const shown = feed.recent.filter(matches).reverse();
    replace(body, shown.map(row));
    count.textContent = `${shown.length} of the last ${feed.recent.length} events.`;
  }

  filter.addEventListener('input', render);
  paused.addEventListener('change', () => paused.checked || render());
  const off = feed.onEvent((ev) => {
    if (paused.checked) return;
    if (matches(ev)) {
      body.prepend(row(ev));
      while (body.children.length > 200) body.lastChild.remove();
    }
    count.textContent = `${body.children.length} of the last ${feed.recent.length} events.`;
  });
  render();
  return off;
}

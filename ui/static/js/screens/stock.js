// The stock screen: SKUs by prefix from the listing API (GET /v1/skus), with
// their stock summed over locations. Rows follow the change feed: a SKU that
// changes is read again (GET /v1/skus/{sku}, which reflects every write).

import { get, seg } from '../api.js';
import { h, replace, when } from '../dom.js';
import * as feed from '../feed.js';
import { clearAlert, showProblem } from '../shell.js';

const pageSize = 50;

export function stockScreen(el) {
  const prefix = h('input', { id: 'stock-prefix', name: 'prefix', type: 'search', autocomplete: 'off', placeholder: 'e.g. APP' });
  const form = h('form', { class: 'inline', role: 'search', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'stock-prefix' }, 'SKU starts with'), prefix),
    h('button', { type: 'submit' }, 'Search'));
  const body = h('tbody', {});
  const table = h('table', { id: 'stock-table' },
    h('caption', {}, 'Stock by SKU, summed over locations. Choose a SKU for its locations, lots, history and chart.'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'SKU'), h('th', { scope: 'col', class: 'num' }, 'On hand'),
      h('th', { scope: 'col', class: 'num' }, 'Reserved'), h('th', { scope: 'col', class: 'num' }, 'Available'))),
    body);
  const more = h('button', { type: 'button', hidden: true }, 'More');
  const fresh = h('p', { class: 'muted', id: 'stock-freshness' });
  el.append(h('h2', {}, 'Stock'), form, fresh, h('div', { class: 'scroll' }, table), more);

  const rows = new Map(); // sku -> <tr>
  let next = '';
  let current = '';

  function row(s) {
    const tr = h('tr', { 'data-sku': s.sku },
      h('th', { scope: 'row' }, h('a', { href: '#/sku/' + seg(s.sku) }, s.sku)),
      h('td', { class: 'num', 'data-col': 'on_hand' }),
      h('td', { class: 'num', 'data-col': 'reserved' }),
      h('td', { class: 'num', 'data-col': 'available' }));
    fill(tr, s);
    return tr;
  }

  function fill(tr, s) {
    tr.querySelector('[data-col=on_hand]').textContent = s.on_hand;
    tr.querySelector('[data-col=reserved]').textContent = s.reserved;
    const av = tr.querySelector('[data-col=available]');
    replace(av, String(s.available), s.available <= 0 ? h('span', { class: 'tag' }, ' out of stock') : null);
    tr.classList.toggle('out', s.available <= 0);
    tr.classList.toggle('short', (s.shortage || 0) > 0);
  }

  async function load(reset) {
    clearAlert();
    if (reset) {
      current = prefix.value.trim();
      next = '';
      rows.clear();
      body.replaceChildren();
    }
    try {
      const page = await get('/v1/skus', { prefix: current, after: next, limit: pageSize });
      for (const s of page.items) {
        if (rows.has(s.sku)) continue;
        const tr = row(s);
        rows.set(s.sku, tr);
        body.append(tr);
      }
      next = page.next;
      more.hidden = !next;
      // A listing behind the log may miss changes the feed has already
      // shown: read this page's SKUs again, exactly.
      if (page.lag && page.lag.events > 0) for (const s of page.items) changed({ sku: s.sku });
      fresh.textContent = `Listing as of ${when(page.as_of)}${page.lag && page.lag.events ? `, ${page.lag.events} events behind` : ''}; rows update live.`;
      if (!rows.size) body.append(h('tr', { class: 'empty' }, h('td', { colspan: 4 }, current ? `No SKU starts with \u201c${current}\u201d.` : 'No SKUs yet.')));
    } catch (e) {
      showProblem(e, null, 'Listing SKUs');
    }
  }

  // A changed SKU is read again at most every 300 ms, however busy it is.
  const due = new Map();
  function changed(ev) {
    if (!ev.sku || !ev.sku.startsWith(current) || due.has(ev.sku)) return;
    due.set(ev.sku, setTimeout(async () => {
      due.delete(ev.sku);
      try {
        const s = await get('/v1/skus/' + seg(ev.sku));
        let tr = rows.get(s.sku);
        if (!tr) {
          // A new SKU: put it in lexical order (if it belongs to the pages loaded).
          if (next && s.sku > next) return;
          body.querySelector('tr.empty')?.remove();
          tr = row(s);
          const after = [...rows.keys()].filter((k) => k < s.sku).sort().pop();
          if (after) rows.get(after).after(tr);
          else body.prepend(tr);
          rows.set(s.sku, tr);
          return;
        }
        fill(tr, s);
        tr.classList.remove('flash');
        void tr.offsetWidth; // restart the highlight
        tr.classList.add('flash');
      } catch {
        // The next change reads it again; the listing stays as it was.
      }
    }, 300));
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load(true);
  });
  more.addEventListener('click', () => load(false));
  const off = feed.onEvent(changed);
  load(true);
  return () => {
    off();
    for (const t of due.values()) clearTimeout(t);
  };
}

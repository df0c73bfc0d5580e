// The reservations screen: one reservation by id, or a customer's held
// reservations (GET /v1/reservations?customer=, newest first, paged), and
// releasing a held one.

import { call, get, seg } from '../api.js';
import { h, replace, when } from '../dom.js';
import { clearAlert, field, notify, showProblem } from '../shell.js';

export function reservationsScreen(el, [id]) {
  const byID = h('form', { class: 'inline', id: 'res-by-id', novalidate: true },
    field('id', 'Reservation id', { id: 'res-id', required: true }), h('button', { type: 'submit' }, 'Look up'));
  const byCustomer = h('form', { class: 'inline', id: 'res-by-customer', novalidate: true },
    field('customer', 'Customer', { id: 'res-customer', required: true }), h('button', { type: 'submit' }, 'List held'));
  const out = h('div', { id: 'reservations-out' });
  el.append(h('h2', {}, 'Reservations'), byID, byCustomer, out);

  let gone = false;

  async function show(rid) {
    clearAlert();
    try {
      const r = await get('/v1/reservations/' + seg(rid));
      if (!gone) replace(out, card(r));
    } catch (e) {
      replace(out);
      showProblem(e, byID, 'Looking up the reservation');
    }
  }

  async function list(customer, after, body, more) {
    clearAlert();
    try {
      const page = await get('/v1/reservations', { customer, after, limit: 50 });
      if (gone) return;
      for (const r of page.items) body.append(h('tr', {},
        h('th', { scope: 'row' }, h('a', { href: '#/reservations/' + seg(r.id) }, r.id)),
        h('td', {}, r.status), h('td', {}, when(r.created_at)), h('td', {}, when(r.expires_at)),
        h('td', {}, r.lines.map((l) => `${l.sku} \u00d7 ${l.quantity}`).join(', '))));
      more.hidden = !page.next;
      more.onclick = () => list(customer, page.next, body, more);
      if (!body.children.length) body.append(h('tr', {}, h('td', { colspan: 5 }, `No held reservations for \u201c${customer}\u201d.`)));
    } catch (e) {
      showProblem(e, byCustomer, 'Listing the customer\u2019s reservations');
    }
  }

  function card(r) {
    const release = h('button', { type: 'button', id: 'release', class: 'danger' }, 'Release');
    let armed = false;
    release.addEventListener('click', async () => {
      // Two steps: a release cannot be undone.
      if (!armed) {
        armed = true;
        release.textContent = 'Confirm release';
        return;
      }
      release.disabled = true;
      clearAlert();
      try {
        const res = await call('POST', `/v1/reservations/${seg(r.id)}/release`);
        notify(`Reservation ${r.id} is ${res.body.status}.`);
        if (!gone) replace(out, card(res.body));
      } catch (e) {
        release.disabled = false;
        showProblem(e, null, `Releasing ${r.id}`);
      }
    });
    return h('article', { class: 'card', id: 'reservation', 'data-status': r.status },
      h('h3', {}, `Reservation ${r.id}`),
      h('dl', { class: 'pairs' },
        h('dt', {}, 'Status'), h('dd', { id: 'reservation-status' }, r.status),
        r.customer ? [h('dt', {}, 'Customer'), h('dd', {}, r.customer)] : null,
        h('dt', {}, 'Created'), h('dd', {}, when(r.created_at)),
        h('dt', {}, r.status === 'held' ? 'Expires' : 'Deadline was'), h('dd', {}, when(r.expires_at))),
      h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ...['SKU', 'Quantity', 'Held', 'Where'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, r.lines.map((l) => h('tr', {},
          h('th', { scope: 'row' }, h('a', { href: '#/sku/' + seg(l.sku) }, l.sku)),
          h('td', { class: 'num' }, l.quantity), h('td', { class: 'num' }, l.held ?? ''),
          h('td', {}, (l.allocations || []).map((a) => `${a.location}: ${a.quantity}`).join(', '))))))),
      r.status === 'held' ? release : null);
  }

  byID.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const rid = byID.elements.id.value.trim();
    if (rid) location.hash = '#/reservations/' + seg(rid);
  });
  byCustomer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const customer = byCustomer.elements.customer.value.trim();
    if (!customer) return;
    const body = h('tbody', {});
    const more = h('button', { type: 'button', hidden: true }, 'More');
    replace(out, h('div', { class: 'scroll' }, h('table', { id: 'customer-reservations' },
      h('caption', {}, `Held reservations of ${customer}, newest first (from the read model: a second or so behind).`),
      h('thead', {}, h('tr', {}, ...['Reservation', 'Status', 'Created', 'Expires', 'Lines'].map((c) => h('th', { scope: 'col' }, c)))),
      body)), more);
    list(customer, '', body, more);
  });

  if (id) {
    byID.elements.id.value = id;
    show(id);
  }
  return () => {
    gone = true;
  };
}

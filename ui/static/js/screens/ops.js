// The operations screen: receive, adjust, count and transfer stock, and book
// a transfer's arrival. Each form posts to its /v1 route with a command id it
// made up and keeps until the command succeeds, so that sending again after a
// timeout is a harmless replay (200) instead of a second receipt.

import { get, seg } from '../api.js';
import { h, newID } from '../dom.js';
import { apiForm, field, values } from '../shell.js';

const reasons = ['damaged', 'lost', 'found', 'returned', 'count', 'other'];

export function opsScreen(el) {
  const locs = h('datalist', { id: 'locations-list' });
  const loc = (name, label) => field(name, label, { required: true, list: 'locations-list' });
  const qty = (name, label) => field(name, label, { required: true, type: 'number', step: 1, inputmode: 'numeric', 'data-int': true });
  const idField = (kind) => {
    const f = field('id', 'Command id', { required: true, value: newID(kind) });
    f.querySelector('input').dataset.kind = kind;
    return f;
  };
  const renew = (form) => {
    const input = form.elements.id;
    input.value = newID(input.dataset.kind);
  };
  const what = (created) => (created === 201 ? 'done' : 'already done: replayed');

  const receive = apiForm(h('form', { id: 'receive-form', class: 'card', novalidate: true },
    h('h3', {}, 'Receive stock'),
    idField('rcv'), field('sku', 'SKU', { required: true }), loc('location', 'Location'), qty('quantity', 'Quantity'),
    field('lot', 'Lot'), field('best_before', 'Best before', { type: 'date' }),
    h('button', { type: 'submit' }, 'Receive')), {
    path: '/v1/receipts',
    what: 'Receiving',
    body: values,
    done: (r, status) => {
      renew(receive);
      return `Received ${r.quantity} \u00d7 ${r.sku} at ${r.location}${r.lot ? ` (lot ${r.lot})` : ''}: receipt ${r.id}, ${what(status)}.`;
    },
  });

  const adjust = apiForm(h('form', { id: 'adjust-form', class: 'card', novalidate: true },
    h('h3', {}, 'Adjust stock'),
    idField('adj'), field('sku', 'SKU', { required: true }), loc('location', 'Location'),
    qty('delta', 'Change (negative removes)'), field('reason', 'Reason', { options: reasons, required: true }),
    h('button', { type: 'submit' }, 'Adjust')), {
    path: '/v1/adjustments',
    what: 'Adjusting',
    body: values,
    done: (r, status) => {
      renew(adjust);
      return `Adjusted ${r.sku} at ${r.location} by ${r.delta} (${r.reason}): ${r.id}, ${what(status)}.`;
    },
  });

  const count = apiForm(h('form', { id: 'count-form', class: 'card', novalidate: true },
    h('h3', {}, 'Count stock'),
    idField('cnt'), field('sku', 'SKU', { required: true }), loc('location', 'Location'),
    field('on_hand', 'Counted on hand', { required: true, type: 'number', step: 1, min: 0, inputmode: 'numeric', 'data-int': true }),
    h('button', { type: 'submit' }, 'Record count')), {
    path: '/v1/counts',
    what: 'Counting',
    body: values,
    done: (r, status) => {
      renew(count);
      return `Counted ${r.sku} at ${r.location}: ${r.on_hand} on hand (${r.delta > 0 ? '+' : ''}${r.delta ?? 0}), ${what(status)}.`;
    },
  });

  const transfer = apiForm(h('form', { id: 'transfer-form', class: 'card', novalidate: true },
    h('h3', {}, 'Transfer stock'),
    idField('trf'), field('sku', 'SKU', { required: true }), loc('from', 'From'), loc('to', 'To'), qty('quantity', 'Quantity'),
    h('button', { type: 'submit' }, 'Send')), {
    path: '/v1/transfers',
    what: 'Transferring',
    body: values,
    done: (r, status) => {
      renew(transfer);
      arrive.elements.id.value = r.id;
      return `Sent ${r.quantity} \u00d7 ${r.sku} from ${r.from} to ${r.to}: transfer ${r.id} is ${r.status}, ${what(status)}.`;
    },
  });

  const arrive = apiForm(h('form', { id: 'arrive-form', class: 'card', novalidate: true },
    h('h3', {}, 'Book a transfer\u2019s arrival'),
    field('id', 'Transfer id', { required: true }),
    h('button', { type: 'submit' }, 'Arrived')), {
    path: (f) => `/v1/transfers/${seg(f.elements.id.value.trim())}/arrive`,
    what: 'Booking the arrival',
    body: () => undefined,
    done: (r) => `Transfer ${r.id}: ${r.quantity} \u00d7 ${r.sku} arrived at ${r.to}.`,
  });

  el.append(h('h2', {}, 'Receive, adjust, count, transfer'),
    h('p', { class: 'muted' }, 'Each form sends one command to the API. Errors show the API\u2019s own answer; nothing changes when a command is refused.'),
    locs, h('div', { class: 'forms' }, receive, adjust, count, transfer, arrive));

  // Known locations feed the location fields' suggestions.
  get('/v1/locations').then((r) => {
    for (const l of r.items) locs.append(h('option', { value: l.id }, `${l.kind}${l.region ? ', ' + l.region : ''}`));
  }).catch(() => {});
  return null;
}

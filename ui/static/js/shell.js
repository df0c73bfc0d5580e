// shell.js: what every screen shares: the alert region problems are shown
// in, the status line, and forms that post to the API.

import { call, Problem } from './api.js';
import { h, replace } from './dom.js';

const alertEl = () => document.getElementById('alert');
const noticeEl = () => document.getElementById('notice');

/** clearAlert empties the alert region. */
export function clearAlert() {
  replace(alertEl());
}

/** notify says something went well, in the polite status region. */
export function notify(text) {
  replace(noticeEl(), text);
}

/**
 * showProblem puts an error in the alert region (role=alert): the problem's
 * title, status and code, its detail, and its per-line shortfalls. With a
 * form, the field the detail names is marked invalid and described by it.
 */
export function showProblem(err, form, what) {
  if (err && err.name === 'AbortError') return;
  const p = err instanceof Problem ? err : new Problem({ title: 'Something went wrong in the page', detail: String(err && err.message ? err.message : err), status: 0, code: 'ui' });
  if (!(err instanceof Problem)) console.error(err);
  const lines = Array.isArray(p.lines) && p.lines.length
    ? h('ul', { class: 'problem-lines' }, p.lines.map((l) => h('li', {}, `${l.sku}: requested ${l.requested}, available ${l.available}${l.sales_cap ? ` (sales cap ${l.sales_cap})` : ''}`)))
    : null;
  replace(alertEl(), h('div', { class: 'problem', 'data-code': p.code || '', 'data-status': p.status || 0 },
    h('p', { class: 'problem-title' }, what ? `${what}: ` : '', h('strong', {}, p.title || 'Error'),
      p.status ? ` (${p.status}${p.code ? ' ' + p.code : ''})` : ''),
    p.detail ? h('p', { class: 'problem-detail' }, p.detail) : null,
    p.reservation_status ? h('p', {}, `Reservation status: ${p.reservation_status}`) : null,
    p.retryAfter ? h('p', {}, `Retry after ${p.retryAfter} s.`) : null,
    lines,
    h('button', { type: 'button', class: 'link', onclick: clearAlert }, 'Dismiss')));
  if (form) markField(form, p.detail || '');
}

// markField marks the input the API's detail names. Details name the field
// first ("quantity must be between 1 and …", "best_before must be a date…")
// or quote it (unknown field "x"); the first input so named is marked.
function markField(form, detail) {
  const names = [...form.elements].filter((e) => e.name).map((e) => e.name);
  const first = detail.split(/[\s:]/, 1)[0];
  let name = names.find((n) => n === first);
  if (!name) name = names.find((n) => new RegExp(`(^|[^a-z_])${n}([^a-z_]|$)`).test(detail));
  if (!name) return;
  const input = form.elements[name];
  input.setAttribute('aria-invalid', 'true');
  const err = form.querySelector(`[data-error-for="${name}"]`);
  if (err) {
    err.textContent = detail;
    input.setAttribute('aria-describedby', err.id);
  }
  input.focus();
}

/** clearFields removes the marks of a previous refusal from a form. */
export function clearFields(form) {
  for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
  for (const e of form.querySelectorAll('[data-error-for]')) e.textContent = '';
}

let fieldSeq = 0;

/**
 * field returns a labelled input with a place for its error:
 * field('quantity', 'Quantity', {type: 'number'}).
 */
export function field(name, label, attrs = {}) {
  const id = attrs.id || `f-${name}-${++fieldSeq}`;
  const input = attrs.options
    ? h('select', { id, name }, attrs.options.map((o) => h('option', { value: o }, o)))
    : h('input', { id, name, type: 'text', autocomplete: 'off', ...attrs });
  return h('div', { class: 'field' },
    h('label', { for: id }, label, attrs.required ? '' : h('span', { class: 'optional' }, ' (optional)')),
    input,
    h('span', { class: 'field-error', id: id + '-error', 'data-error-for': name }));
}

/**
 * values reads a form as a JSON body: empty fields are left out, and fields
 * marked data-int are sent as numbers when they are whole numbers (anything
 * else is sent as typed, for the API to refuse naming the field).
 */
export function values(form) {
  const body = {};
  for (const e of form.elements) {
    if (!e.name || e.value === '') continue;
    if (e.dataset.int !== undefined && /^-?\d+$/.test(e.value.trim())) body[e.name] = Number(e.value.trim());
    else body[e.name] = e.value;
  }
  return body;
}

/**
 * apiForm wires a form to a POST: on submit it sends body(form) and shows
 * done(answer, status) in the form's result line, or the problem.
 */
export function apiForm(form, { method = 'POST', path, body, done, what }) {
  const result = h('p', { class: 'result', role: 'status' });
  form.append(result);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearAlert();
    clearFields(form);
    result.textContent = '';
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const res = await call(method, typeof path === 'function' ? path(form) : path, { body: body(form) });
      const text = done(res.body, res.status);
      result.textContent = text;
      notify(text);
    } catch (e) {
      showProblem(e, form, what);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

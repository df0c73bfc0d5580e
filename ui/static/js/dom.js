// dom.js: a small helper to build elements without innerHTML, so that no
// text from the server is ever parsed as markup.

/**
 * h builds an element: h('td', {class: 'num'}, '12'). Attributes starting
 * with "on" become listeners; children may be strings, numbers, nodes,
 * arrays, or null (skipped).
 */
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** replace empties el and puts children in it. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** when formats an RFC 3339 time as "2026-05-01 12:00:00Z": UTC, as the server keeps it. */
export function when(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().slice(0, 19).replace('T', ' ') + 'Z';
}

/** newID returns a fresh command id such as "ui-rcv-k3j9x2a1": a form keeps it until it succeeds, so a retry is idempotent. */
export function newID(kind) {
  const b = new Uint8Array(6);
  crypto.getRandomValues(b);
  return 'ui-' + kind + '-' + Array.from(b, (x) => x.toString(36).padStart(2, '0')).join('');
}

/** daysUntil is how many whole days from today (UTC) to date "2027-03-15". */
export function daysUntil(date) {
  const d = Date.parse(date + 'T00:00:00Z');
  if (isNaN(d)) return Infinity;
  const today = new Date();
  const t = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  return Math.round((d - t) / 86400000);
}

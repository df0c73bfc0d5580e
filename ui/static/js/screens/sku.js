// The SKU screen: its stock per location (lots with best-before, in transit,
// shortages), a chart of its available stock over time, its history, and
// its state at any past moment. It follows the change feed for this SKU.

import { get, seg } from '../api.js';
import { h, replace, when, daysUntil } from '../dom.js';
import { chart } from '../chart.js';
import { describe } from '../events.js';
import * as feed from '../feed.js';
import { clearAlert, showProblem } from '../shell.js';

const historyPages = 5; // at most 5 pages of 1000 events are loaded
const pageLimit = 1000;
const rowsShown = 200; // history rows in the table, newest first
const chartReads = 40; // past states read for the chart, at most
const soonDays = 7; // a lot this close to its best-before is highlighted

export function skuScreen(el, [sku]) {
  if (!sku) {
    location.hash = '#/stock';
    return null;
  }
  const path = '/v1/skus/' + seg(sku);
  const summary = h('div', { id: 'sku-summary' });
  const locations = h('div', { class: 'scroll', id: 'sku-locations' });
  const chartBox = h('div', { id: 'chart', class: 'chart-box' }, h('p', { class: 'muted' }, 'Loading the chart\u2026'));
  const slider = h('input', { id: 'travel', name: 'travel', type: 'range', min: 0, max: 0, value: 0, step: 1, disabled: true });
  const sliderOut = h('output', { id: 'travel-moment', for: 'travel' });
  const asOf = h('input', { id: 'travel-at', name: 'as_of', type: 'datetime-local', step: 1 });
  const asOfForm = h('form', { class: 'inline', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'travel-at' }, 'Or any moment (your local time)'), asOf),
    h('button', { type: 'submit' }, 'Show'));
  const travelState = h('div', { id: 'travel-state', 'aria-live': 'polite' });
  const historyBody = h('tbody', {});
  const historyNote = h('p', { class: 'muted', id: 'history-note' });

  el.append(
    h('p', {}, h('a', { href: '#/stock' }, '\u2190 All stock')),
    h('h2', {}, 'SKU ', h('span', { id: 'sku-name' }, sku)),
    summary,
    h('h3', {}, 'Locations'), locations,
    h('h3', {}, 'Available over time'), chartBox,
    h('h3', {}, 'State at a past moment'),
    h('div', { class: 'field' }, h('label', { for: 'travel' }, 'Moment in the SKU\u2019s history (one step per event)'), slider, sliderOut),
    asOfForm, travelState,
    h('h3', {}, 'History'), historyNote,
    h('div', { class: 'scroll' }, h('table', { id: 'history-table' },
      h('caption', {}, 'Events of this SKU, newest first.'),
      h('thead', {}, h('tr', {}, ...['Version', 'Time', 'Event', 'What', 'By'].map((c) => h('th', { scope: 'col' }, c)))),
      historyBody)));

  let gone = false;
  const events = []; // the SKU's history, oldest first
  const seen = new Set();
  const points = new Map(); // position -> {t, v}
  let chartReady = false;

  function renderState(s) {
    replace(summary, h('dl', { class: 'stats' },
      stat('On hand', s.on_hand, 'sku-on-hand'),
      stat('Reserved', s.reserved, 'sku-reserved'),
      stat('Available', s.available, 'sku-available', s.available <= 0 ? 'out' : ''),
      stat('In transit', s.in_transit, 'sku-in-transit'),
      stat('Shortage', s.shortage, 'sku-shortage', s.shortage > 0 ? 'short' : ''),
      stat('Safety stock', s.safety_stock),
      s.sales_cap ? stat('Sales cap left', `${s.sales_cap_remaining ?? 0} of ${s.sales_cap}`) : null,
      stat('Version', s.version)));
    replace(locations, locationTable(s, 'locations-table'));
  }

  function renderHistory() {
    const shown = events.slice(-rowsShown).reverse();
    replace(historyBody, shown.map((ev) => h('tr', { 'data-type': ev.type },
      h('td', { class: 'num' }, ev.version), h('td', {}, when(ev.time)), h('td', {}, ev.type),
      h('td', {}, describe(ev)), h('td', {}, ev.actor || ''))));
    historyNote.textContent = events.length > rowsShown ? `Showing the newest ${rowsShown} of ${events.length} events loaded.` : `${events.length} events.`;
    slider.max = Math.max(0, events.length - 1);
    slider.disabled = events.length === 0;
  }

  function renderChart() {
    replace(chartBox, chart([...points.values()], `Available stock of ${sku} over time`));
  }

  async function refresh(evTime) {
    const s = await get(path);
    if (gone) return;
    renderState(s);
    if (chartReady) {
      points.set(s.position, { t: evTime ? Date.parse(evTime) : Date.now(), v: s.available });
      renderChart();
    }
  }

  async function loadHistory() {
    let after = '';
    for (let i = 0; i < historyPages; i++) {
      const page = await get(path + '/events', { after, limit: pageLimit });
      for (const ev of page.events) add(ev);
      if (page.events.length < pageLimit) return true;
      after = page.next;
    }
    return false;
  }

  function add(ev) {
    if (seen.has(ev.id)) return false;
    seen.add(ev.id);
    events.push(ev);
    return true;
  }

  // The chart reads the SKU's state as of up to chartReads of its events,
  // evenly spread, always the first and the last: exact values from the
  // server's own fold, not a second reckoning here.
  async function loadChart() {
    const byPos = [];
    for (const ev of events) if (!byPos.length || byPos[byPos.length - 1].position !== ev.position) byPos.push(ev);
    const pick = new Set();
    const n = byPos.length;
    for (let i = 0; i < Math.min(n, chartReads); i++) pick.add(Math.round((i * (n - 1)) / Math.max(1, Math.min(n, chartReads) - 1)));
    for (const i of [...pick].sort((a, b) => a - b)) {
      if (gone) return;
      const ev = byPos[i];
      const s = await readAt({ position: ev.position });
      points.set(s.position, { t: Date.parse(ev.time), v: s.available });
    }
    chartReady = true;
    // Events that came in while the past was read: the state now ends it.
    await refresh(events.length ? events[events.length - 1].time : undefined);
  }

  // readAt reads a past state, waiting out a 503 (the server runs only a few
  // time-travel reads at once) up to three times.
  async function readAt(query) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await get(path, query);
      } catch (e) {
        if (e.status !== 503 || attempt >= 3) throw e;
        await new Promise((r) => setTimeout(r, 1000 * (Number(e.retryAfter) || 1)));
      }
    }
  }

  async function travel(query, label) {
    try {
      const s = await readAt(query);
      if (gone) return;
      replace(travelState,
        h('p', {}, label, ': available ', h('strong', { id: 'travel-available' }, String(s.available)),
          `, on hand ${s.on_hand}, reserved ${s.reserved}, in transit ${s.in_transit}`),
        h('div', { class: 'scroll' }, locationTable(s, 'travel-locations')));
    } catch (e) {
      showProblem(e, null, 'Reading the past state');
    }
  }

  let travelTimer = null;
  slider.addEventListener('input', () => {
    const ev = events[Number(slider.value)];
    if (!ev) return;
    sliderOut.textContent = `${when(ev.time)} \u2014 v${ev.version} ${ev.type}`;
    // While the slider moves, read only where it rests.
    clearTimeout(travelTimer);
    travelTimer = setTimeout(() => travel({ position: ev.position }, `After v${ev.version} ${ev.type} at ${when(ev.time)}`), 150);
  });
  asOfForm.addEventListener('submit', (e) => {
    e.preventDefault();
    clearAlert();
    const d = new Date(asOf.value);
    if (!asOf.value || isNaN(d)) {
      asOf.setAttribute('aria-invalid', 'true');
      return;
    }
    asOf.removeAttribute('aria-invalid');
    travel({ as_of: d.toISOString() }, `As of ${when(d)}`);
  });

  // Live: an event of this SKU joins the history and refreshes the state and
  // the chart (at most every 300 ms).
  let due = null;
  let lastTime = null;
  const off = feed.onEvent((ev) => {
    if (ev.sku !== sku || !add(ev)) return;
    events.sort((a, b) => a.version - b.version);
    renderHistory();
    lastTime = ev.time;
    if (due) return;
    due = setTimeout(() => {
      due = null;
      refresh(lastTime).catch((e) => showProblem(e, null, 'Reading the SKU'));
    }, 300);
  });

  (async () => {
    try {
      renderState(await get(path));
      const complete = await loadHistory();
      if (gone) return;
      events.sort((a, b) => a.version - b.version);
      renderHistory();
      if (!complete) historyNote.textContent += ' Older events beyond the first 5,000 are not loaded.';
      slider.value = slider.max;
      const last = events[events.length - 1];
      if (last) sliderOut.textContent = `${when(last.time)} \u2014 v${last.version} ${last.type} (now)`;
      await loadChart();
    } catch (e) {
      if (!gone) {
        replace(chartBox, h('p', { class: 'muted' }, 'No chart.'));
        showProblem(e, null, `Reading ${sku}`);
      }
    }
  })();

  return () => {
    gone = true;
    off();
    clearTimeout(due);
    clearTimeout(travelTimer);
  };
}

function stat(label, value, id, cls) {
  return h('div', { class: 'stat' + (cls ? ' ' + cls : '') }, h('dt', {}, label), h('dd', { id }, String(value),
    cls === 'out' ? h('span', { class: 'tag' }, ' out of stock') : null,
    cls === 'short' ? h('span', { class: 'tag' }, ' shortage') : null));
}

// locationTable shows a state's locations: stock, in transit, shortage and
// lots with their best-before, the soon-to-expire ones marked.
export function locationTable(s, id) {
  const rows = (s.locations || []).map((l) => h('tr', { class: [l.shortage > 0 ? 'short' : '', l.available <= 0 ? 'out' : ''].join(' ').trim() || null, 'data-location': l.location },
    h('th', { scope: 'row' }, l.location),
    h('td', { class: 'num' }, l.on_hand), h('td', { class: 'num' }, l.reserved),
    h('td', { class: 'num' }, l.available), h('td', { class: 'num' }, l.in_transit),
    h('td', { class: 'num' }, l.shortage > 0 ? h('strong', {}, `${l.shortage} short`) : '0'),
    h('td', {}, lots(l.lots || []))));
  return h('table', { id },
    h('thead', {}, h('tr', {}, ...['Location', 'On hand', 'Reserved', 'Available', 'In transit', 'Shortage', 'Lots (best before)'].map((c, i) => h('th', { scope: 'col', class: i > 0 && i < 6 ? 'num' : null }, c)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 7 }, 'No stock at any location.'))));
}

function lots(list) {
  if (!list.length) return '\u2014';
  return h('ul', { class: 'lots' }, list.map((lot) => {
    const days = lot.best_before ? daysUntil(lot.best_before) : Infinity;
    const cls = days < 0 ? 'expired' : days <= soonDays ? 'soon' : null;
    return h('li', { class: cls }, `${lot.lot || '(undated)'}: ${lot.quantity}`,
      lot.best_before ? ` \u2014 best before ${lot.best_before}` : '',
      cls === 'soon' ? h('span', { class: 'tag' }, ` expires in ${days} day${days === 1 ? '' : 's'}`) : null);
  }));
}

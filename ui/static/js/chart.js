// chart.js: a step chart of a SKU's available stock over time, drawn as SVG
// by hand. Stock holds its value until the next event changes it, so the
// line runs flat between points and steps at each one.

import { h, when } from './dom.js';

const W = 640;
const H = 220;
const pad = { left: 44, right: 12, top: 12, bottom: 28 };

/**
 * chart returns an <svg> of points ({t: Date ms, v: number}, any order)
 * up to the time `until` (default now). It scales to its container's width.
 */
export function chart(points, label, until = Date.now()) {
  const pts = [...points].sort((a, b) => a.t - b.t);
  const svg = h('svg:svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart',
    role: 'img',
    'aria-label': pts.length ? `${label}: ${pts.length} points, now ${pts[pts.length - 1].v}` : `${label}: no history yet`,
    'data-points': pts.length,
  });
  const plotW = W - pad.left - pad.right;
  const plotH = H - pad.top - pad.bottom;
  if (!pts.length) {
    svg.append(h('svg:text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'No history yet'));
    return svg;
  }
  const t0 = pts[0].t;
  const t1 = Math.max(until, pts[pts.length - 1].t, t0 + 1000);
  const lo = Math.min(0, ...pts.map((p) => p.v));
  let hi = Math.max(...pts.map((p) => p.v));
  if (hi <= lo) hi = lo + 1;
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * plotW;
  const y = (v) => pad.top + (1 - (v - lo) / (hi - lo)) * plotH;

  // Axes and three value ticks: the low end, the middle and the top.
  svg.append(h('svg:line', { x1: pad.left, y1: pad.top, x2: pad.left, y2: pad.top + plotH, class: 'axis-line' }));
  svg.append(h('svg:line', { x1: pad.left, y1: y(lo), x2: pad.left + plotW, y2: y(lo), class: 'axis-line' }));
  for (const v of [...new Set([lo, Math.round((lo + hi) / 2), hi])]) {
    svg.append(h('svg:line', { x1: pad.left, y1: y(v), x2: pad.left + plotW, y2: y(v), class: 'grid' }));
    svg.append(h('svg:text', { x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, String(v)));
  }
  svg.append(h('svg:text', { x: pad.left, y: H - 8, class: 'axis' }, when(t0)));
  svg.append(h('svg:text', { x: pad.left + plotW, y: H - 8, 'text-anchor': 'end', class: 'axis' }, when(t1)));

  let d = `M${x(pts[0].t).toFixed(1)},${y(pts[0].v).toFixed(1)}`;
  for (let i = 1; i < pts.length; i++) {
    d += `H${x(pts[i].t).toFixed(1)}V${y(pts[i].v).toFixed(1)}`;
  }
  d += `H${x(t1).toFixed(1)}`;
  svg.append(h('svg:path', { d, class: 'series' }));
  for (const p of pts) {
    svg.append(h('svg:circle', { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 3, class: 'point' }, h('svg:title', {}, `${when(p.t)}: ${p.v} available`)));
  }
  return svg;
}

// Charts drawn as inline SVG: per-action latency over time and error rates. Each chart has a
// title and a text summary beside it, for screen readers and for reading exact numbers.

import {svg} from './dom.js';

const W = 640;
const H = 220;
const PAD = {left: 56, right: 12, top: 14, bottom: 28};

let counter = 0;

/** The `p`-th percentile (0–100) of `values` (nearest rank); undefined when empty. */
export function percentile(values, p) {
  if (!values.length) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const exp = 10 ** Math.floor(Math.log10(v));
  const steps = [1, 2, 2.5, 5, 10];
  return exp * steps.find((s) => s * exp >= v);
}

function frame(title, yMax, yFormat) {
  const id = `chart-${++counter}`;
  const plotH = H - PAD.top - PAD.bottom;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const y = PAD.top + plotH * (1 - f);
    return [
      svg('line', {x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: 'grid'}),
      svg('text', {x: PAD.left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick'}, yFormat(yMax * f)),
    ];
  });
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart',
    role: 'img',
    'aria-labelledby': id,
  }, svg('title', {id}, title), ticks);
  return {root, plotH, plotW: W - PAD.left - PAD.right};
}

/**
 * Latency of one action: one point per activation in time order (failed ones drawn as
 * crosses), y in milliseconds.
 */
export function latencyChart(title, points) {
  const yMax = niceMax(Math.max(...points.map((p) => p.y), 1));
  const {root, plotH, plotW} = frame(title, yMax, (v) => `${Math.round(v)} ms`);
  const n = points.length;
  const x = (i) => PAD.left + (n <= 1 ? plotW / 2 : (plotW * i) / (n - 1));
  const y = (v) => PAD.top + plotH * (1 - v / yMax);
  const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
  root.append(svg('path', {d, class: 'line'}));
  points.forEach((p, i) => {
    const cx = x(i);
    const cy = y(p.y);
    root.append(p.failed
      ? svg('path', {d: `M${cx - 4},${cy - 4}L${cx + 4},${cy + 4}M${cx - 4},${cy + 4}L${cx + 4},${cy - 4}`, class: 'fail-mark'})
      : svg('circle', {cx, cy, r: 3, class: p.cold ? 'dot cold' : 'dot'}));
  });
  root.append(svg('text', {x: PAD.left, y: H - 8, class: 'tick'}, 'older'),
    svg('text', {x: W - PAD.right, y: H - 8, 'text-anchor': 'end', class: 'tick'}, 'newer'));
  return root;
}

/** Error rate per action, one bar each, y in percent. */
export function errorRateChart(title, bars) {
  const {root, plotH, plotW} = frame(title, 100, (v) => `${Math.round(v)}%`);
  const slot = plotW / Math.max(bars.length, 1);
  bars.forEach((b, i) => {
    const hgt = (plotH * b.rate) / 100;
    const x0 = PAD.left + slot * i + slot * 0.2;
    root.append(
      svg('rect', {x: x0, y: PAD.top + plotH - hgt, width: slot * 0.6, height: Math.max(hgt, 0.5), class: b.rate > 0 ? 'bar bad' : 'bar'}),
      svg('text', {x: x0 + slot * 0.3, y: H - 8, 'text-anchor': 'middle', class: 'tick'}, b.label.length > 14 ? `${b.label.slice(0, 13)}…` : b.label));
  });
  return root;
}

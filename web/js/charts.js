// SVG charts: the strength gauge and the history charts. Colours come from CSS classes (the CSP
// forbids inline style attributes in markup; presentation attributes are fine).

import { s } from './dom.js';
import { isNum } from './format.js';

/** The strength band: words and a class, so the colour is never the only signal. */
export function strengthBand(v) {
  if (!isNum(v)) return { name: 'unknown', cls: 'band-unknown' };
  if (v >= 70) return { name: 'strong', cls: 'band-good' };
  if (v >= 40) return { name: 'fair', cls: 'band-fair' };
  return { name: 'weak', cls: 'band-poor' };
}

/** A half-ring gauge for a 0..100 value (null: an empty track). */
export function gauge(value) {
  const band = strengthBand(value);
  const arc = 'M 10 60 A 50 50 0 0 1 110 60';
  const clamped = isNum(value) ? Math.min(Math.max(value, 0), 100) : 0;
  return s('svg', {
    class: ['gauge', band.cls],
    viewBox: '0 0 120 66',
    'aria-hidden': 'true',
    focusable: 'false',
  },
  s('path', { class: 'gauge-track', d: arc, pathLength: '100' }),
  isNum(value)
    ? s('path', {
      class: 'gauge-value',
      d: arc,
      pathLength: '100',
      'stroke-dasharray': `${clamped} 100`,
    })
    : null);
}

/** "14:05:09 UTC+1": a time of day with the browser's time zone, for axes and hover. */
export function fmtClock(ms, withZone = true) {
  const opts = {
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  };
  if (withZone) opts.timeZoneName = 'short';
  return new Date(ms).toLocaleTimeString(undefined, opts);
}

/**
 * A chart of samples [{t: ms, v: number|null}] over [endMs - windowMs, endMs] with axes (the
 * y range and the times at both ends) and a hover readout: the nearest sample's value and its
 * time with the time zone. Nulls and gaps longer than `gapMs` break the line (never drawn as 0).
 * Returns an element; `fmt` formats values (null for unknown).
 */
// Where the pointer is over each chart (by key): a chart rebuilt under the pointer (new data)
// shows its readout again at once.
const hovering = new Map();

export function lineChart(samples, {
  windowMs, endMs, label, fmt, domain = null, gapMs = Infinity, cls = '', key = label,
}) {
  const W = 300;
  const H = 60;
  const inWindow = samples.filter((p) => p.t >= endMs - windowMs && p.t <= endMs);
  // The x axis spans the history held, up to the window: a young history fills the width (the
  // axis says which times it covers).
  const start = inWindow.length ? Math.min(inWindow[0].t, endMs - 1000) : endMs - windowMs;
  const spanMs = endMs - start;
  const mini = cls.includes('chart-mini');
  const known = inWindow.filter((p) => isNum(p.v));
  const root = document.createElement('div');
  root.className = `chart ${cls}`.trim();
  root.setAttribute('role', 'img');
  const svg = s('svg', {
    class: 'chart-plot', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', 'aria-hidden': 'true', focusable: 'false',
  });
  const yAxis = document.createElement('div');
  yAxis.className = 'chart-y';
  const xAxis = document.createElement('div');
  xAxis.className = 'chart-x';
  const readout = document.createElement('div');
  readout.className = 'chart-readout';
  readout.setAttribute('aria-live', 'off');
  const fmtV = (v) => (isNum(v) ? (fmt(v) ?? String(v)) : 'unknown');
  const xStart = document.createElement('span');
  const xEnd = document.createElement('span');
  xStart.textContent = mini ? fmtClock(start, false).slice(0, 5) : fmtClock(start, false);
  xEnd.textContent = mini ? fmtClock(endMs, false).slice(0, 5) : fmtClock(endMs, true);
  xAxis.append(xStart, xEnd);
  if (!known.length) {
    root.setAttribute('aria-label', `${label}: no history yet`);
    root.dataset.points = '0';
    const empty = document.createElement('span');
    empty.className = 'chart-empty';
    empty.textContent = 'no data in this window';
    root.append(empty, svg, xAxis);
    return root;
  }
  let min = domain ? domain[0] : Math.min(...known.map((p) => p.v));
  let max = domain ? domain[1] : Math.max(...known.map((p) => p.v));
  const minSpan = Math.max(Math.abs(max), Math.abs(min)) * 0.1 || 1;
  if (max - min < minSpan) {
    const mid = (max + min) / 2;
    min = Math.max(mid - minSpan / 2, domain ? domain[0] : -Infinity);
    max = min + minSpan;
  }
  const x = (t) => ((t - start) / spanMs) * W;
  const y = (v) => 2 + (1 - (v - min) / (max - min)) * (H - 4);
  let d = '';
  let area = '';
  let prev = null;
  let segStart = null;
  const close = () => {
    if (segStart !== null && prev) area += `L ${x(prev.t).toFixed(1)} ${H} L ${segStart} ${H} Z `;
    segStart = null;
  };
  for (const p of inWindow) {
    if (!isNum(p.v) || (prev && p.t - prev.t > gapMs)) {
      close();
      prev = null;
      if (!isNum(p.v)) continue;
    }
    const px = x(p.t).toFixed(1);
    const py = y(p.v).toFixed(1);
    if (!prev) {
      d += `M ${px} ${py} `;
      area += `M ${px} ${H} L ${px} ${py} `;
      segStart = px;
    } else {
      d += `L ${px} ${py} `;
      area += `L ${px} ${py} `;
    }
    prev = p;
  }
  close();
  if (area) svg.append(s('path', { class: 'spark-area', d: area }));
  if (d) svg.append(s('path', { class: 'spark-line', d, 'vector-effect': 'non-scaling-stroke' }));
  // A lone point draws no line: mark it.
  if (known.length === 1) svg.append(s('circle', { class: 'chart-dot', cx: x(known[0].t), cy: y(known[0].v), r: 2 }));
  const cursor = s('line', { class: 'chart-cursor', x1: 0, x2: 0, y1: 0, y2: H, visibility: 'hidden', 'vector-effect': 'non-scaling-stroke' });
  svg.append(cursor);
  const hi = document.createElement('span');
  const lo = document.createElement('span');
  hi.textContent = fmtV(max);
  lo.textContent = fmtV(min);
  yAxis.append(hi, lo);
  const last = known[known.length - 1];
  const lo2 = known.reduce((a, p) => Math.min(a, p.v), Infinity);
  const hi2 = known.reduce((a, p) => Math.max(a, p.v), -Infinity);
  root.setAttribute('aria-label', `${label}: ${known.length} samples from ${fmtV(lo2)} to ${fmtV(hi2)}, last ${fmtV(last.v)} at ${fmtClock(last.t)}`);
  root.dataset.points = String(known.length);
  const plot = document.createElement('div');
  plot.className = 'chart-area';
  plot.append(svg, readout);
  root.append(yAxis, plot, xAxis);
  const show = (clientX) => {
    const r = plot.getBoundingClientRect();
    if (r.width <= 0) return;
    const t = start + ((clientX - r.left) / r.width) * spanMs;
    let best = null;
    for (const p of inWindow) if (!best || Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
    if (!best) return;
    readout.textContent = `${fmtV(best.v)} · ${new Date(best.t).toLocaleDateString()} ${fmtClock(best.t)}`;
    readout.hidden = false;
    root.classList.add('is-hover');
    const cx = x(best.t);
    cursor.setAttribute('x1', cx);
    cursor.setAttribute('x2', cx);
    cursor.setAttribute('visibility', 'visible');
  };
  const hide = () => {
    readout.hidden = true;
    root.classList.remove('is-hover');
    cursor.setAttribute('visibility', 'hidden');
  };
  readout.hidden = true;
  plot.addEventListener('pointermove', (e) => {
    hovering.set(key, e.clientX);
    show(e.clientX);
  });
  plot.addEventListener('pointerleave', () => {
    hovering.delete(key);
    hide();
  });
  if (hovering.has(key)) requestAnimationFrame(() => { if (root.isConnected) show(hovering.get(key)); });
  return root;
}

// SVG charts: the strength gauge and the sparklines. Colours come from CSS classes (the CSP
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

/**
 * A sparkline of samples [{t: ms, v: number|null}] within the window [endMs - windowMs, endMs].
 * Nulls break the line (an unknown value is not drawn as 0); fewer than two samples draw nothing.
 * `domain` [min, max] fixes the y axis (e.g. [0, 100] for the strength); else it fits the data.
 */
export function sparkline(samples, windowMs, endMs, label, domain = null) {
  const W = 120;
  const H = 32;
  const PAD = 2;
  const known = samples.filter((p) => isNum(p.v));
  const svg = s('svg', {
    class: 'spark',
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': label,
  });
  if (known.length === 0) return svg;
  let min = domain ? domain[0] : Math.min(...known.map((p) => p.v));
  let max = domain ? domain[1] : Math.max(...known.map((p) => p.v));
  // Small wobbles of a large value (22 -> 21 peers) must not look like a collapse: the y range
  // is at least 10% of the value's magnitude.
  const minSpan = Math.max(Math.abs(max), Math.abs(min)) * 0.1 || 1;
  if (max - min < minSpan) {
    const mid = (max + min) / 2;
    min = mid - minSpan / 2;
    max = mid + minSpan / 2;
  }
  // The x axis spans the samples held (up to the window), so a young history fills the width.
  const first = samples.find((p) => p.t >= endMs - windowMs);
  const start = Math.max(endMs - windowMs, first ? first.t : endMs);
  const span = endMs - start;
  if (span <= 0) return svg;
  const x = (t) => ((t - start) / span) * W;
  const y = (v) => PAD + (1 - (v - min) / (max - min)) * (H - 2 * PAD);
  let d = '';
  let pen = false;
  let area = '';
  let segStartX = null;
  let lastX = null;
  const closeArea = () => {
    if (segStartX !== null && lastX !== null) area += `L ${lastX.toFixed(2)} ${H} L ${segStartX.toFixed(2)} ${H} Z `;
  };
  for (const p of samples) {
    if (p.t < start) continue;
    if (!isNum(p.v)) {
      closeArea();
      pen = false;
      segStartX = null;
      lastX = null;
      continue;
    }
    const px = x(p.t).toFixed(2);
    const py = y(p.v).toFixed(2);
    if (!pen) {
      d += `M ${px} ${py} `;
      area += `M ${px} ${H} L ${px} ${py} `;
      segStartX = Number(px);
    } else {
      d += `L ${px} ${py} `;
      area += `L ${px} ${py} `;
    }
    lastX = Number(px);
    pen = true;
  }
  closeArea();
  if (area) svg.append(s('path', { class: 'spark-area', d: area }));
  if (d) svg.append(s('path', { class: 'spark-line', d, 'vector-effect': 'non-scaling-stroke' }));
  return svg;
}

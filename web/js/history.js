// The sparklines' memory: one sample per published network body (a poll that returns the same
// publication adds nothing), kept for HISTORY_WINDOW_MS. In memory only: a reload starts afresh.

import { isNum } from './format.js';

export const HISTORY_WINDOW_MS = 10 * 60 * 1000;

export class History {
  constructor(fields, windowMs = HISTORY_WINDOW_MS) {
    this.fields = fields;
    this.windowMs = windowMs;
    this.samples = Object.fromEntries(fields.map((f) => [f, []]));
    this.lastKey = null;
    this.lastT = null;
  }

  /**
   * Adds the values of `body` (a network metrics body), stamped with its own timestamp (unix
   * seconds) or `nowMs` when it has none. Returns true when a sample was added.
   */
  add(body, nowMs = Date.now()) {
    if (!body) return false;
    const t = isNum(body.timestamp) ? body.timestamp * 1000 : nowMs;
    const key = `${body.timestamp}|${body.block_height}|${body.network_strength}`;
    if (key === this.lastKey) return false;
    this.lastKey = key;
    // A clock going backwards (agent restarted, time adjusted) starts the history afresh
    // rather than drawing a line back in time.
    if (this.lastT !== null && t < this.lastT) this.clear();
    this.lastT = t;
    for (const f of this.fields) {
      const v = body[f];
      this.samples[f].push({ t, v: isNum(v) ? v : null });
    }
    this.prune(t);
    return true;
  }

  prune(endMs) {
    const start = endMs - this.windowMs;
    for (const f of this.fields) {
      const arr = this.samples[f];
      let i = 0;
      while (i < arr.length && arr[i].t < start) i += 1;
      if (i) arr.splice(0, i);
    }
  }

  clear() {
    for (const f of this.fields) this.samples[f] = [];
    this.lastT = null;
  }

  /** Known values of `field` within the window: {min, max, count}. */
  range(field) {
    const vals = this.samples[field].map((p) => p.v).filter(isNum);
    if (!vals.length) return null;
    return { min: Math.min(...vals), max: Math.max(...vals), count: vals.length };
  }
}

// The charts' memory. The agent keeps the history (GET /theblock/history, docs/dashboard.md):
// the page reads the whole window when it opens, so the charts are full at first paint, even
// right after a reload or an agent restart; then it adds the points of the `history` stream (or
// of a short history request on each poll when there is no stream). An agent without that
// endpoint: the page falls back to its own memory of the network bodies it saw (10 minutes,
// lost on reload), and says so.

import { isNum } from './format.js';

export const LOCAL_WINDOW_MS = 10 * 60 * 1000;

export class AgentHistory {
  constructor() {
    /** series name -> [{t, v}], oldest first */
    this.series = {};
    this.windowS = null;         // the agent's window (s); null until known
    this.resolutionS = null;
    this.source = 'none';        // 'agent' | 'page' | 'none'
    this.lastT = null;
    this.lastKey = null;
  }

  /** Merges a history body {"series": {name: [[ms, v|null], ...]}, window, resolution_seconds}. */
  merge(body) {
    if (!body || typeof body !== 'object' || !body.series || typeof body.series !== 'object') return false;
    if (isNum(body.resolution_seconds)) this.resolutionS = body.resolution_seconds;
    let added = false;
    for (const [name, points] of Object.entries(body.series)) {
      if (!Array.isArray(points)) continue;
      const arr = this.series[name] || (this.series[name] = []);
      for (const p of points) {
        if (!Array.isArray(p) || !isNum(p[0])) continue;
        const point = { t: p[0], v: isNum(p[1]) ? p[1] : null };
        const last = arr.length ? arr[arr.length - 1].t : -Infinity;
        if (point.t > last) arr.push(point);
        else if (point.t === last) arr[arr.length - 1] = point;
        else continue;
        if (this.lastT === null || point.t > this.lastT) this.lastT = point.t;
        added = true;
      }
    }
    this.prune();
    return added;
  }

  /** Replaces the series in `body` with its points (a full read: may reach further back). */
  replace(body) {
    if (!body || typeof body !== 'object' || !body.series || typeof body.series !== 'object') return;
    for (const name of Object.keys(body.series)) this.series[name] = [];
    this.merge(body);
  }

  /** Page-only memory: one point per network body (an agent without /theblock/history). */
  addBody(body, nowMs = Date.now()) {
    if (!body) return false;
    const t = isNum(body.timestamp) ? body.timestamp * 1000 : nowMs;
    const key = `${body.timestamp}|${body.block_height}|${body.network_strength}`;
    if (key === this.lastKey) return false;
    this.lastKey = key;
    if (this.lastT !== null && t < this.lastT) this.series = {};
    const series = {};
    for (const [k, v] of Object.entries(body)) if (isNum(v) || v === null) series[k] = [[t, v]];
    const terms = body.strength_terms && typeof body.strength_terms === 'object' ? body.strength_terms : {};
    for (const [k, v] of Object.entries(terms)) series[`strength_terms.${k}`] = [[t, isNum(v) ? v : null]];
    return this.merge({ series });
  }

  windowMs() {
    return this.source === 'agent' && isNum(this.windowS) ? this.windowS * 1000 : LOCAL_WINDOW_MS;
  }

  prune() {
    if (this.lastT === null) return;
    const start = this.lastT - this.windowMs();
    for (const arr of Object.values(this.series)) {
      let i = 0;
      while (i < arr.length && arr[i].t < start) i += 1;
      if (i) arr.splice(0, i);
    }
  }

  samples(name) {
    return this.series[name] || [];
  }

  /** Seconds of history held for `name` (0 when fewer than two points). */
  spanSeconds(name) {
    const arr = this.samples(name);
    return arr.length < 2 ? 0 : (arr[arr.length - 1].t - arr[0].t) / 1000;
  }
}

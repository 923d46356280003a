// Plugins panel: every section a plugin publishes that no other panel shows (a third-party
// plugin's, say), as key/value pairs with its age and status. The list comes from GET /plugins,
// each section from GET /plugins/<plugin>/<section>, every refresh_ms. Hidden while there is
// none, so the page stays short.

import { h, replace, valueOrUnknown } from '../dom.js';
import { fmtNum, humanize, isNum } from '../format.js';
import { getJson } from '../live.js';
import { renderFreshness } from './common.js';

// Sections the other panels show.
const KNOWN = new Set([
  'network/metrics', 'network/peers', 'compute/market', 'storage/market', 'energy/market', 'ads/market',
]);
const KNOWN_PLUGINS = new Set(['receipts']);
const NOT_SHOWN = new Set(['timestamp', 'age_seconds', 'stale', 'stale_reason', 'unavailable']);
const MAX_SECTIONS = 24;

function valueText(v) {
  if (v === null || v === undefined) return null;
  if (isNum(v)) return fmtNum(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v;
  const json = JSON.stringify(v);
  return json.length > 160 ? `${json.slice(0, 157)}…` : json;
}

export class PluginsPanel {
  constructor(config) {
    this.config = config;
    this.sections = new Map();  // "plugin/section" -> {body, error, receivedMs}
    this.list = h('div', { class: 'plugin-grid' });
    this.root = h('section', { class: 'panel panel-plugins', id: 'plugins', 'aria-labelledby': 'plugins-title', hidden: true },
      h('header', { class: 'panel-head' },
        h('div', { class: 'panel-titles' },
          h('h2', { id: 'plugins-title' }, 'Plugins'),
          h('p', { class: 'freshness' }, 'Sections of plugins the page has no panel for'))),
      this.list);
  }

  start() {
    const loop = async () => {
      await this.refresh().catch(() => {});
      setTimeout(loop, this.config.refreshMs);
    };
    loop();
  }

  async refresh() {
    const base = this.config.apiBase;
    const r = await getJson(`${base}/plugins`, this.config.refreshMs);
    if (!r.reached || r.status !== 200 || !r.body || !Array.isArray(r.body.plugins)) return;
    const paths = [];
    for (const p of r.body.plugins) {
      if (!p || typeof p.name !== 'string' || KNOWN_PLUGINS.has(p.name) || !Array.isArray(p.sections)) continue;
      for (const path of p.sections) {
        if (typeof path !== 'string') continue;
        const key = path.replace(/^\/plugins\//, '');
        if (!KNOWN.has(key)) paths.push(key);
      }
    }
    const wanted = paths.slice(0, MAX_SECTIONS);
    const results = await Promise.all(wanted.map((key) => getJson(`${base}/plugins/${key}`, this.config.refreshMs)));
    const now = Date.now();
    const next = new Map();
    wanted.forEach((key, i) => {
      const res = results[i];
      if (!res.reached) {
        if (this.sections.has(key)) next.set(key, this.sections.get(key));
        return;
      }
      const err = res.body && res.body.error && typeof res.body.error === 'object' ? res.body.error : null;
      next.set(key, err || res.status !== 200
        ? { body: null, error: { message: err && err.message ? err.message : `HTTP ${res.status}` }, receivedMs: now }
        : { body: res.body, error: null, receivedMs: now });
    });
    this.sections = next;
    this.render();
  }

  render() {
    this.root.hidden = this.sections.size === 0;
    replace(this.list, [...this.sections.entries()].map(([key, sec]) => {
      const [plugin, name] = key.split('/');
      const fresh = h('p', { class: 'freshness' });
      renderFreshness(fresh, sec);
      const status = !sec.body ? 'no data' : sec.body.stale === true ? 'stale' : 'fresh';
      const entries = sec.body ? Object.entries(sec.body).filter(([k]) => !NOT_SHOWN.has(k)) : [];
      const unavailable = sec.body && sec.body.unavailable && typeof sec.body.unavailable === 'object' ? sec.body.unavailable : {};
      return h('article', { class: ['plugin-card', `plugin-${status.replace(' ', '-')}`], 'data-plugin-section': key },
        h('header', { class: 'market-head' },
          h('h3', {}, `${humanize(plugin)} · ${name}`),
          h('span', { class: ['tag', status === 'fresh' ? 'tag-ok' : 'tag-bad'], 'data-field': 'status' }, status)),
        fresh,
        sec.body
          ? h('dl', { class: 'figures' }, entries.map(([k, v]) => h('div', { class: 'figure' },
            h('dt', {}, humanize(k)),
            h('dd', {}, valueOrUnknown(valueText(v), typeof unavailable[k] === 'string' ? unavailable[k] : 'not reported', { 'data-field': k })))))
          : h('p', { class: 'market-error' }, sec.error ? sec.error.message : 'no data'));
    }));
  }

  tick(nowMs) {
    for (const el of this.list.querySelectorAll('[data-plugin-section]')) {
      const sec = this.sections.get(el.dataset.pluginSection);
      const fresh = el.querySelector('.freshness');
      if (sec && fresh) renderFreshness(fresh, sec, nowMs);
    }
  }
}

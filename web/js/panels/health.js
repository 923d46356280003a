// The agent health strip (GET /health) and the banner that says when the page is not live.

import { h, replace, valueOrUnknown } from '../dom.js';
import { fmtAge, fmtDuration, fmtInt, isNum } from '../format.js';
import { statusBadge } from './markets.js';

export class HealthStrip {
  constructor() {
    this.banner = h('div', { class: 'banner', id: 'conn-banner', hidden: true });
    this.root = h('section', { class: 'panel health-strip', id: 'health', 'aria-labelledby': 'health-title' });
    this.head = h('div', { class: 'health-head' },
      h('h2', { id: 'health-title' }, 'Agent health'));
    this.badge = h('span', {});
    this.facts = h('dl', { class: 'health-facts' });
    this.reasons = h('ul', { class: 'reasons', 'aria-label': 'Why the agent is degraded' });
    this.head.append(this.badge);
    this.root.append(this.head, this.facts, this.reasons);
  }

  /** The banner over the panels for a page that is not live. */
  updateBanner(state) {
    const b = this.banner;
    b.className = 'banner';
    if (state.kind === 'disconnected') {
      b.hidden = false;
      b.classList.add('banner-bad');
      replace(b, h('strong', {}, 'Agent not answering. '),
        `${state.reason} The figures below are the last ones received (${state.detail}).`);
    } else if (state.kind === 'stale') {
      b.hidden = false;
      b.classList.add('banner-warn');
      replace(b, h('strong', {}, 'Data is stale. '), `${state.reason} (${state.detail}).`);
    } else {
      b.hidden = true;
      replace(b);
    }
  }

  /** Uptime now: the agent's figure plus the time since it came (the strip ticks every second). */
  uptime(nowMs = Date.now()) {
    const s = this.section;
    if (!s || !s.body || !isNum(s.body.uptime_seconds)) return null;
    return s.body.uptime_seconds + Math.max(0, nowMs - s.receivedMs) / 1000;
  }

  /** `answering`: false while the agent does not answer (its uptime is then not extrapolated). */
  tick(nowMs, answering = true) {
    const el = this.facts.querySelector('[data-field=uptime_seconds]');
    const up = this.uptime(answering ? nowMs : this.section && this.section.receivedMs);
    if (!el || up === null) return;
    const text = fmtDuration(Math.floor(up));
    if (el.textContent !== text) el.textContent = text;
  }

  update(section) {
    this.section = section;
    const body = section && section.body;
    if (!body) {
      replace(this.badge, statusBadge(null, { 'data-field': 'health_status' }));
      replace(this.facts, h('div', {}, h('dt', {}, 'Health'),
        h('dd', {}, section && section.error ? section.error.message : 'no answer from /health yet')));
      replace(this.reasons);
      return;
    }
    replace(this.badge, statusBadge(body.status, { 'data-field': 'health_status' }));

    const node = body.node && typeof body.node === 'object' ? body.node : {};
    let nodeText;
    if (node.reachable === true) {
      nodeText = isNum(node.last_answer_age_seconds)
        ? `reachable, answered ${fmtAge(node.last_answer_age_seconds)} ago`
        : 'reachable';
    } else if (node.reachable === false) {
      nodeText = 'unreachable';
    } else {
      nodeText = null;
    }
    const plugins = body.plugins && typeof body.plugins === 'object' ? Object.entries(body.plugins) : [];
    const okPlugins = plugins.filter(([, p]) => p && p.state === 'ok').length;
    const notOk = plugins.filter(([, p]) => !p || p.state !== 'ok');

    replace(this.facts,
      h('div', { class: 'fact' }, h('dt', {}, 'Node'),
        h('dd', { class: node.reachable === false ? 'is-bad' : null },
          valueOrUnknown(nodeText, 'the agent did not say', { 'data-field': 'node_reachable' }),
          typeof node.rpc_url === 'string' ? h('span', { class: 'muted mono' }, ` ${node.rpc_url}`) : null)),
      h('div', { class: 'fact' }, h('dt', {}, 'Plugins'),
        h('dd', {}, plugins.length ? `${fmtInt(okPlugins)} of ${fmtInt(plugins.length)} ok` : 'none loaded',
          notOk.map(([name, p]) => h('span', { class: 'chip chip-warn', title: p && p.last_error ? p.last_error : '' },
            `${name}: ${p && p.state ? p.state : 'unknown'}`)))),
      h('div', { class: 'fact' }, h('dt', {}, 'Uptime'),
        h('dd', {}, valueOrUnknown(fmtDuration(this.uptime() === null ? null : Math.floor(this.uptime())), 'not reported', { 'data-field': 'uptime_seconds' }))),
      typeof body.version === 'string'
        ? h('div', { class: 'fact' }, h('dt', {}, 'Agent'), h('dd', {}, `v${body.version}`))
        : null);

    const reasons = Array.isArray(body.reasons) ? body.reasons.filter((r) => typeof r === 'string') : [];
    replace(this.reasons, reasons.map((r) => h('li', {}, r)));
    this.reasons.hidden = reasons.length === 0;
  }
}

// Network strength panel: GET /theblock/network/metrics (the network plugin's section).

import { gauge, sparkline, strengthBand } from '../charts.js';
import { h, replace, valueOrUnknown } from '../dom.js';
import {
  fmtByteRate, fmtDec1, fmtDec2, fmtDuration, fmtInt, isNum,
} from '../format.js';
import { History, HISTORY_WINDOW_MS } from '../history.js';
import { errorCallout, panel, renderFreshness } from './common.js';

const TERMS = [
  { key: 'peers', label: 'Peers' },
  { key: 'tps', label: 'Throughput' },
  { key: 'finality', label: 'Finality' },
];

// The tiles, in reading order. `fmt` returns null for unknown.
const STATS = [
  { key: 'block_height', label: 'Block height', fmt: fmtInt, spark: true },
  { key: 'block_rate', label: 'Block rate', fmt: (v) => (isNum(v) ? `${fmtDec2(v)} blocks/s` : null), spark: true },
  { key: 'finality_time', label: 'Finality', fmt: fmtDuration, spark: true },
  { key: 'tps', label: 'TPS', fmt: (v) => (isNum(v) ? `${fmtDec1(v)} tx/s` : null), spark: true },
  { key: 'peer_count', label: 'Peers', fmt: fmtInt, spark: true },
  { key: 'active_connections', label: 'Connections', fmt: fmtInt, spark: false },
  { key: 'bandwidth_in', label: 'Bandwidth in', fmt: fmtByteRate, spark: true },
  { key: 'bandwidth_out', label: 'Bandwidth out', fmt: fmtByteRate, spark: true },
];

const HISTORY_FIELDS = ['network_strength', ...STATS.filter((s) => s.spark).map((s) => s.key)];

function reasonOf(body, key) {
  const u = body && body.unavailable;
  if (u && typeof u === 'object' && typeof u[key] === 'string') return u[key];
  return null;
}

export class NetworkPanel {
  constructor() {
    const p = panel('network', 'Network strength', 'panel-network');
    this.root = p.root;
    this.body = p.body;
    this.freshness = p.freshness;
    this.history = new History(HISTORY_FIELDS);
    this.section = null;
  }

  sparkFor(key, label, fmt, domain = null) {
    const samples = this.history.samples[key];
    const end = this.history.lastT || Date.now();
    const range = this.history.range(key);
    const minutes = Math.round(HISTORY_WINDOW_MS / 60000);
    const desc = range
      ? `${label} over the last ${minutes} min: ${range.count} samples, from ${fmt(range.min)} to ${fmt(range.max)}`
      : `${label}: no history yet`;
    const svg = sparkline(samples, HISTORY_WINDOW_MS, end, desc, domain);
    svg.append(h('title', {}, desc));
    return svg;
  }

  /** "last 4 min" (the history held, up to the window). */
  spanLabel() {
    const samples = this.history.samples.network_strength;
    if (samples.length < 2) return 'history starts now';
    const seconds = (samples[samples.length - 1].t - samples[0].t) / 1000;
    return seconds < 60 ? `last ${Math.round(seconds)} s` : `last ${Math.round(seconds / 60)} min`;
  }

  update(section) {
    this.section = section;
    renderFreshness(this.freshness, section);
    if (!section || !section.body) {
      replace(this.body, errorCallout(section, 'network data'));
      return;
    }
    const b = section.body;
    this.history.add(b);

    const strength = isNum(b.network_strength) ? b.network_strength : null;
    const band = strengthBand(strength);
    const strengthReason = reasonOf(b, 'network_strength');
    const terms = b.strength_terms && typeof b.strength_terms === 'object' ? b.strength_terms : {};

    const gaugeBlock = h('div', { class: 'strength' },
      h('div', { class: 'gauge-wrap' },
        gauge(strength),
        h('div', { class: 'gauge-readout' },
          strength === null
            ? valueOrUnknown(null, strengthReason || 'the agent did not report a strength', { 'data-field': 'network_strength' })
            : h('span', { class: 'gauge-number', 'data-field': 'network_strength', 'data-value': String(strength) }, fmtInt(strength)),
          h('span', { class: 'gauge-unit' }, '/ 100'),
          h('span', { class: ['band-label', band.cls] }, strength === null ? 'unknown' : band.name))),
      h('div', { class: 'terms' },
        h('h3', { class: 'mini-title' }, 'Strength terms', h('span', { class: 'hint', title: 'Points each input earns before the known terms are rescaled to 100. An unknown input leaves its term out.' }, ' (points)')),
        h('dl', { class: 'term-list' },
          TERMS.map((t) => h('div', { class: 'term' },
            h('dt', {}, t.label),
            h('dd', {}, valueOrUnknown(
              isNum(terms[t.key]) ? `${fmtDec1(terms[t.key])} pts` : null,
              reasonOf(b, `strength_terms.${t.key}`) || `the ${t.label.toLowerCase()} input is unknown`,
              { 'data-field': `term_${t.key}` })))))),
      h('div', { class: 'strength-spark' },
        h('span', { class: 'mini-title', title: 'Kept in this page\'s memory, up to 10 minutes' }, `Strength, ${this.spanLabel()}`),
        this.sparkFor('network_strength', 'Network strength', (v) => fmtInt(v), [0, 100])));

    const tiles = h('div', { class: 'stat-grid' },
      STATS.map((st) => {
        const v = b[st.key];
        const text = st.fmt(v);
        return h('div', { class: 'stat' },
          h('span', { class: 'stat-label' }, st.label),
          valueOrUnknown(text, reasonOf(b, st.key) || 'not reported',
            { class: text === null ? 'value unknown stat-value' : 'value stat-value', 'data-field': st.key, 'data-value': isNum(v) ? String(v) : null }),
          st.spark ? this.sparkFor(st.key, st.label, (x) => st.fmt(x) ?? String(x)) : null);
      }));

    const profile = typeof b.profile === 'string'
      ? h('p', { class: 'panel-note' }, `Node profile: ${b.profile}`)
      : null;
    replace(this.body, gaugeBlock, tiles, profile);
  }

  tick(nowMs) {
    renderFreshness(this.freshness, this.section, nowMs);
  }
}

// Network strength panel: GET /theblock/network/metrics (the network plugin's section), with
// charts from the agent's history (GET /theblock/history and the `history` stream).

import { gauge, lineChart, strengthBand } from '../charts.js';
import { h, replace, valueOrUnknown } from '../dom.js';
import {
  fmtAge, fmtByteRate, fmtDec1, fmtDec2, fmtDuration, fmtInt, isNum,
} from '../format.js';
import { sectionAge } from '../status.js';
import { errorCallout, panel, renderFreshness } from './common.js';

const TERMS = [
  { key: 'peers', label: 'Peers' },
  { key: 'tps', label: 'Throughput' },
  { key: 'finality', label: 'Finality' },
];

// The tiles, in reading order. `fmt` returns null for unknown.
const STATS = [
  { key: 'block_height', label: 'Block height', fmt: fmtInt },
  { key: 'last_block_age_seconds', label: 'Last block', fmt: (v) => (isNum(v) ? `${fmtAge(v)} ago` : null) },
  { key: 'block_rate', label: 'Block rate', fmt: (v) => (isNum(v) ? `${fmtDec2(v)} blocks/s` : null) },
  { key: 'finality_time', label: 'Finality', fmt: fmtDuration },
  { key: 'tps', label: 'TPS', fmt: (v) => (isNum(v) ? `${fmtDec1(v)} tx/s` : null) },
  { key: 'peer_count', label: 'Peers', fmt: fmtInt },
  { key: 'active_connections', label: 'Connections', fmt: fmtInt },
  { key: 'bandwidth_in', label: 'Bandwidth in', fmt: fmtByteRate },
  { key: 'bandwidth_out', label: 'Bandwidth out', fmt: fmtByteRate },
];

const WINDOW_KEY = 'blockbuster.chartWindow';

function reasonOf(body, key) {
  const u = body && body.unavailable;
  if (u && typeof u === 'object' && typeof u[key] === 'string') return u[key];
  return null;
}

/** "ok" | "warn" | "critical" for a last-block age against the page's thresholds. */
export function lastBlockLevel(age, warnS, criticalS) {
  if (!isNum(age)) return 'unknown';
  if (age >= criticalS) return 'critical';
  if (age >= warnS) return 'warn';
  return 'ok';
}

function windowLabel(seconds) {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 3600) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 60)} min`;
}

export class NetworkPanel {
  constructor(client, config) {
    const p = panel('network', 'Network strength', 'panel-network');
    this.client = client;
    this.config = config;
    this.root = p.root;
    this.body = p.body;
    this.freshness = p.freshness;
    this.section = null;
    let saved = null;
    try {
      saved = localStorage.getItem(WINDOW_KEY);
    } catch {
      saved = null;
    }
    this.choice = saved === '900' || saved === '3600' || saved === 'all' ? saved : '3600';
    this.picker = h('div', { class: 'window-picker', role: 'group', 'aria-label': 'Chart window' });
    p.tools.append(this.picker);
    this.renderPicker();
    // The agent sends only what the charts draw, over the window they show.
    client.historySeries = ['network_strength', ...STATS.map((st) => st.key)];
    client.historyWantS = this.choiceSeconds();
  }

  choiceSeconds() {
    return this.choice === 'all' ? 86400 : Number(this.choice);
  }

  /** The window the charts show, in ms: the choice, within what the history holds. */
  chartWindowMs() {
    const whole = this.client.history.windowMs();
    if (this.choice === 'all') return whole;
    return Math.min(Number(this.choice) * 1000, whole);
  }

  renderPicker() {
    const hist = this.client.history;
    const whole = hist.source === 'agent' && isNum(hist.windowS) ? hist.windowS : 600;
    const options = [['900', '15 min'], ['3600', '1 h'], ['all', `All (${windowLabel(whole)})`]];
    const key = `${this.choice}|${whole}`;
    if (this.picker.dataset.key === key) return;
    this.picker.dataset.key = key;
    replace(this.picker, options.map(([value, label]) => {
      const b = h('button', {
        type: 'button', class: 'btn btn-small', 'data-window': value, 'aria-pressed': String(this.choice === value),
      }, label);
      b.addEventListener('click', () => {
        this.choice = value;
        try {
          localStorage.setItem(WINDOW_KEY, value);
        } catch {
          // storage disabled: the choice lasts for this page
        }
        this.renderPicker();
        this.client.setHistoryWindow(this.choiceSeconds());
        this.update(this.section);
      });
      return b;
    }));
  }

  chartFor(key, label, fmt, { domain = null, cls = 'chart-mini' } = {}) {
    const hist = this.client.history;
    const windowMs = this.chartWindowMs();
    const end = Math.max(hist.lastT || 0, Date.now() - 1000);
    const gapMs = (hist.resolutionS || 2) * 2500;
    const chart = lineChart(hist.samples(key), {
      windowMs, endMs: end, label, fmt, domain, gapMs, cls, key,
    });
    chart.dataset.series = key;
    return chart;
  }

  /** The history held, for the chart titles: "last 1 h" or "history starts now". */
  spanLabel() {
    const hist = this.client.history;
    const seconds = Math.min(hist.spanSeconds('network_strength'), this.chartWindowMs() / 1000);
    if (seconds <= 0) return 'history starts now';
    return seconds < 60 ? `last ${Math.round(seconds)} s` : `last ${windowLabel(Math.round(seconds / 60) * 60)}`;
  }

  /** The last-block age now: the body's, plus the time since it was measured (fresh data only). */
  lastBlockAge(nowMs = Date.now()) {
    const sec = this.section;
    const b = sec && sec.body;
    if (!b || !isNum(b.last_block_age_seconds)) return null;
    const age = sectionAge(sec, nowMs);
    return b.last_block_age_seconds + (isNum(age) ? age : 0);
  }

  renderLastBlock(nowMs = Date.now()) {
    const el = this.body.querySelector('[data-tile=last_block_age_seconds]');
    if (!el) return;
    const age = this.lastBlockAge(nowMs);
    const level = lastBlockLevel(age, this.config.lastBlockWarnS, this.config.lastBlockCriticalS);
    el.dataset.level = level;
    el.classList.toggle('stat-warn', level === 'warn');
    el.classList.toggle('stat-bad', level === 'critical');
    const value = el.querySelector('[data-field=last_block_age_seconds]');
    if (value && isNum(age)) {
      const text = `${fmtAge(age)} ago`;
      if (value.textContent !== text) value.textContent = text;
    }
    // The word as well as the colour: "Last block · slow", "Last block · stalled?".
    const label = el.querySelector('.stat-label');
    const word = { warn: ' · slow', critical: ' · stalled?' }[level] || '';
    if (label && label.textContent !== `Last block${word}`) label.textContent = `Last block${word}`;
    el.title = `Amber from ${this.config.lastBlockWarnS} s without a new block, red from ${this.config.lastBlockCriticalS} s (web.last_block_*_seconds)`;
  }

  update(section) {
    this.section = section;
    this.renderPicker();
    renderFreshness(this.freshness, section);
    if (!section || !section.body) {
      replace(this.body, errorCallout(section, 'network data'));
      return;
    }
    const b = section.body;
    const strength = isNum(b.network_strength) ? b.network_strength : null;
    const band = strengthBand(strength);
    const strengthReason = reasonOf(b, 'network_strength');
    const terms = b.strength_terms && typeof b.strength_terms === 'object' ? b.strength_terms : {};
    const source = this.client.history.source;

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
        h('span', {
          class: 'mini-title',
          title: source === 'agent' ? 'Kept by the agent (history.window), across reloads and restarts' : 'This agent keeps no history: kept in this page\'s memory, up to 10 minutes',
        }, `Strength, ${this.spanLabel()}`),
        this.chartFor('network_strength', 'Network strength', (v) => fmtInt(v), { domain: [0, 100], cls: 'chart-main' })));

    const tiles = h('div', { class: 'stat-grid' },
      STATS.map((st) => {
        const v = b[st.key];
        const text = st.fmt(v);
        return h('div', { class: 'stat', 'data-tile': st.key },
          h('span', { class: 'stat-label' }, st.label),
          valueOrUnknown(text, reasonOf(b, st.key) || 'not reported',
            { class: text === null ? 'value unknown stat-value' : 'value stat-value', 'data-field': st.key, 'data-value': isNum(v) ? String(v) : null }),
          this.chartFor(st.key, st.label, (x) => st.fmt(x) ?? String(x)));
      }));

    const profile = typeof b.profile === 'string'
      ? h('p', { class: 'panel-note' }, `Node profile: ${b.profile}`)
      : null;
    replace(this.body, gaugeBlock, tiles, profile);
    this.renderLastBlock();
  }

  tick(nowMs) {
    renderFreshness(this.freshness, this.section, nowMs);
    this.renderLastBlock(nowMs);
  }
}

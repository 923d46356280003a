// Markets health panel: GET /theblock/markets/health (the four market plugins' sections).

import { lineChart } from '../charts.js';
import { h, replace, valueOrUnknown } from '../dom.js';
import {
  fmtBytes, fmtInt, fmtNum, fmtRatio, humanize, isNum,
} from '../format.js';
import {
  errorCallout, panel, renderFreshness, renderIfChanged,
} from './common.js';

const MARKETS = [
  {
    key: 'compute',
    title: 'Compute',
    fields: [
      ['active_jobs', 'Active jobs', fmtInt],
      ['total_providers', 'Providers', fmtInt],
      ['avg_utilization', 'Avg utilization', fmtRatio],
      ['total_revenue', 'Total revenue', fmtNum],
    ],
  },
  {
    key: 'storage',
    title: 'Storage',
    fields: [
      ['total_stored', 'Stored', fmtBytes],
      ['total_providers', 'Providers', fmtInt],
      ['avg_price', 'Avg price', fmtNum],
      ['capacity_used', 'Capacity used', fmtRatio],
    ],
  },
  {
    key: 'energy',
    title: 'Energy',
    fields: [
      ['total_credits', 'Total credits', fmtNum],
      ['avg_price', 'Avg price', fmtNum],
      ['active_traders', 'Active traders', fmtInt],
      ['trading_volume', 'Trading volume', fmtNum],
    ],
  },
  {
    key: 'ads',
    title: 'Ads',
    fields: [
      ['active_campaigns', 'Active campaigns', fmtInt],
      ['total_impressions', 'Impressions', fmtInt],
      ['total_revenue', 'Total revenue', fmtNum],
      ['avg_cpm', 'Avg CPM', fmtNum],
    ],
  },
];

// Members of a market body that are not figures.
const NOT_FIGURES = new Set([
  'status', 'error', 'profile', 'unavailable', 'timestamp', 'age_seconds', 'stale', 'stale_reason',
]);

const STATUS = {
  ok: { cls: 'status-ok', icon: '✓', text: 'OK' },
  healthy: { cls: 'status-ok', icon: '✓', text: 'Healthy' },
  idle: { cls: 'status-idle', icon: '○', text: 'Idle' },
  unavailable: { cls: 'status-bad', icon: '✕', text: 'Unavailable' },
  degraded: { cls: 'status-warn', icon: '!', text: 'Degraded' },
  down: { cls: 'status-bad', icon: '✕', text: 'Down' },
  unknown: { cls: 'status-unknown', icon: '?', text: 'Unknown' },
};

/** A status badge: icon + word + colour (never colour alone). */
export function statusBadge(status, attrs = {}) {
  const st = STATUS[status] || { cls: 'status-unknown', icon: '?', text: status ? humanize(status) : 'Unknown' };
  return h('span', { class: ['badge', st.cls], ...attrs },
    h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, st.icon), st.text);
}

function figureFormatter(key, value) {
  if (/(_bytes|_stored)$/.test(key)) return fmtBytes;
  if (/(utilization|_used|_ratio)$/.test(key) && isNum(value) && value >= 0 && value <= 1) return fmtRatio;
  return fmtNum;
}

export class MarketsPanel {
  /**
   * `client` (optional): its history draws a chart of each market's first figure; `windowMs`
   * gives the window the network panel's picker shows.
   */
  constructor(client = null, windowMs = () => 3600 * 1000) {
    this.client = client;
    this.windowMs = windowMs;
    const p = panel('markets', 'Markets health', 'panel-markets');
    this.root = p.root;
    this.body = p.body;
    this.freshness = p.freshness;
    this.summary = h('div', { class: 'markets-summary' });
    p.tools.append(this.summary);
    this.openExtras = new Set();
    this.section = null;
  }

  card(spec, market) {
    const status = typeof market.status === 'string' ? market.status : 'unavailable';
    const unavailable = market.unavailable && typeof market.unavailable === 'object' ? market.unavailable : {};
    const fallbackReason = typeof market.error === 'string' ? market.error : 'not reported';
    const known = new Set(spec.fields.map((f) => f[0]));
    const extras = Object.keys(market)
      .filter((k) => !known.has(k) && !NOT_FIGURES.has(k))
      .filter((k) => market[k] === null || isNum(market[k]));

    const figures = h('dl', { class: 'figures' },
      spec.fields.map(([key, label, fmt]) => h('div', { class: 'figure' },
        h('dt', {}, label),
        h('dd', {}, valueOrUnknown(fmt(market[key]), unavailable[key] || fallbackReason, {
          'data-field': key,
          'data-value': isNum(market[key]) ? String(market[key]) : null,
        })))));

    let more = null;
    if (extras.length) {
      more = h('details', { class: 'extras', open: this.openExtras.has(spec.key) },
        h('summary', {}, `More figures (${extras.length})`),
        h('dl', { class: 'figures figures-small' },
          extras.map((key) => h('div', { class: 'figure' },
            h('dt', {}, humanize(key)),
            h('dd', {}, valueOrUnknown(figureFormatter(key, market[key])(market[key]),
              unavailable[key] || fallbackReason, { 'data-field': key }))))));
      more.addEventListener('toggle', () => {
        if (more.open) this.openExtras.add(spec.key);
        else this.openExtras.delete(spec.key);
      });
    }

    return h('article', {
      class: ['market-card', `market-${status}`],
      'data-market': spec.key,
      'aria-labelledby': `market-${spec.key}-title`,
    },
    h('header', { class: 'market-head' },
      h('h3', { id: `market-${spec.key}-title` }, spec.title),
      statusBadge(status, { 'data-field': 'status' })),
    status === 'unavailable' && typeof market.error === 'string'
      ? h('p', { class: 'market-error', 'data-field': 'error' }, market.error)
      : null,
    // Too old to judge: greyed and said so; the cause is stated once, under Agent health.
    status === 'unknown'
      ? h('p', { class: 'market-stale', 'data-field': 'stale' },
        'Stale: the last figures received, too old to judge the market.')
      : null,
    figures,
    spec.fields.length ? h('div', { class: 'market-chart', 'data-market-chart': spec.key }) : null,
    more,
    typeof market.profile === 'string' ? h('p', { class: 'card-note' }, `source: ${market.profile} profile`) : null);
  }

  update(section) {
    this.section = section;
    renderFreshness(this.freshness, section);
    if (!section || !section.body) {
      replace(this.summary);
      this.body.dataset.renderKey = '';
      replace(this.body, errorCallout(section, 'market data'));
      return;
    }
    const b = section.body;
    const markets = b.markets && typeof b.markets === 'object' ? b.markets : {};
    const specs = [...MARKETS];
    for (const key of Object.keys(markets)) {
      if (!specs.some((s) => s.key === key)) specs.push({ key, title: humanize(key), fields: [] });
    }
    const healthy = isNum(b.healthy_markets) ? b.healthy_markets : null;
    const total = isNum(b.total_markets) ? b.total_markets : null;
    replace(this.summary,
      h('span', { class: 'summary-label' }, 'Overall'),
      statusBadge(b.overall_status, { 'data-field': 'overall_status' }),
      h('span', { class: 'summary-count', 'data-field': 'healthy_markets' },
        healthy !== null && total !== null ? `${fmtInt(healthy)} of ${fmtInt(total)} healthy` : 'healthy count unknown'),
      // The cause itself is stated once, under Agent health; here only that it is stale.
      typeof b.stale_reason === 'string'
        ? h('span', { class: 'summary-stale', 'data-field': 'stale_reason', title: b.stale_reason },
          'Stale: too old to judge (cause under Agent health)')
        : null);
    // Rebuilt only when a figure changed, so focus, selection and open details survive polls.
    const key = JSON.stringify(markets, (k, v) => (k === 'age_seconds' ? undefined : v));
    renderIfChanged(this.body, key, () => h('div', { class: 'market-grid' },
      specs.map((spec) => this.card(spec, markets[spec.key] && typeof markets[spec.key] === 'object'
        ? markets[spec.key]
        : { status: 'unavailable', error: `the agent reported nothing for the ${spec.key} market` }))));
    this.renderCharts();
  }

  /** The history series the cards chart: each market's first figure. */
  static historySeries() {
    return MARKETS.map((m) => `${m.key}.${m.fields[0][0]}`);
  }

  /** Each card's chart of its first figure, from the agent's history; redrawn on new points. */
  renderCharts() {
    const hist = this.client && this.client.history;
    if (!hist) return;
    const windowMs = Math.min(this.windowMs(), hist.windowMs());
    const key = `${hist.lastT}|${windowMs}|${this.body.dataset.renderKey}`;
    if (this.chartsKey === key) return;
    this.chartsKey = key;
    for (const el of this.body.querySelectorAll('[data-market-chart]')) {
      const spec = MARKETS.find((m) => m.key === el.dataset.marketChart);
      if (!spec) continue;
      const [field, label, fmt] = spec.fields[0];
      const series = `${spec.key}.${field}`;
      const chart = lineChart(hist.samples(series), {
        windowMs,
        endMs: Math.max(hist.lastT || 0, Date.now() - 1000),
        label: `${spec.title}: ${label}`,
        fmt: (v) => fmt(v) ?? String(v),
        gapMs: (hist.resolutionS || 2) * 2500,
        cls: 'chart-mini',
        key: series,
      });
      chart.dataset.series = series;
      replace(el, h('span', { class: 'chart-title' }, label), chart);
    }
  }

  tick(nowMs) {
    renderFreshness(this.freshness, this.section, nowMs);
  }
}

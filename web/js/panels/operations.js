// Operations panel: recent operations (GET /theblock/operations, with by_market), the receipts
// audit trail (GET /theblock/receipts?limit&offset&market) and the peers (GET
// /theblock/peers/list). The controls are built once and never replaced, so keyboard focus
// stays where the operator left it while the data under them refreshes.

import { h, replace, valueOrUnknown } from '../dom.js';
import {
  fmtInt, fmtNum, fmtDuration, isNum, shortId,
} from '../format.js';
import { RECEIPTS_PAGE_SIZE } from '../live.js';
import {
  checkScrollHints, errorCallout, renderFreshness, renderIfChanged, table, timeCell,
} from './common.js';

// The receipts API's market names (the guide's: "ad", not "ads"), shown as the market cards
// name them.
const MARKET_FILTERS = ['compute', 'storage', 'energy', 'ad'];
const MARKET_LABELS = {
  compute: 'Compute', storage: 'Storage', energy: 'Energy', ad: 'Ads', ads: 'Ads',
};
export function marketLabel(m) {
  return MARKET_LABELS[m] || m;
}
const FIRST_OPERATION_ROWS = 10;
const MAX_OPERATION_ROWS = 50;
const TABS = [
  { id: 'recent-operations', label: 'Recent operations' },
  { id: 'receipts', label: 'Receipts' },
  { id: 'peers', label: 'Peers' },
];

/** Compares two cells for sorting: numbers as numbers, text as text, unknown last. */
function compareValues(a, b) {
  const na = a === null || a === undefined || a === '';
  const nb = b === null || b === undefined || b === '';
  if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function marketOf(row) {
  if (typeof row.market === 'string') return row.market;
  if (typeof row.type === 'string') return row.type;
  return null;
}

function idCell(v) {
  if (v === null || v === undefined || v === '') return valueOrUnknown(null, 'not given');
  const full = String(v);
  return h('span', { class: 'mono', title: full }, shortId(full));
}

function numCell(v, fmt = fmtNum) {
  return valueOrUnknown(isNum(v) ? fmt(v) : null, 'not given');
}

function statusCell(v) {
  if (typeof v !== 'string' || !v) return valueOrUnknown(null, 'not given');
  const cls = /^(completed|success|settled|ok|confirmed)$/i.test(v) ? 'tag-ok'
    : /^(failed|error|rejected|expired|slashed)$/i.test(v) ? 'tag-bad'
      : 'tag-neutral';
  return h('span', { class: ['tag', cls] }, v);
}

function marketCell(row) {
  const m = marketOf(row);
  return m ? h('span', { class: ['tag', 'tag-market', `tag-${m}`], 'data-market': m }, marketLabel(m)) : valueOrUnknown(null, 'not given');
}

const ACTIVITY_COLUMNS = [
  { key: 'time', label: 'When', cell: (r) => timeCell(r.timestamp) },
  { key: 'market', label: 'Market', cell: marketCell },
  { key: 'block_height', label: 'Block', cls: 'num', cell: (r) => numCell(r.block_height, fmtInt) },
  { key: 'provider', label: 'Provider', cell: (r) => idCell(r.provider) },
  { key: 'consumer', label: 'Consumer', cell: (r) => idCell(r.consumer) },
  { key: 'amount', label: 'Amount', cls: 'num', cell: (r) => numCell(r.amount) },
  { key: 'status', label: 'Status', cell: (r) => statusCell(r.status) },
];

const RECEIPT_COLUMNS = [
  { key: 'id', label: 'Receipt', cell: (r) => idCell(r.id) },
  ...ACTIVITY_COLUMNS,
];

const PEER_COLUMNS = [
  { key: 'id', label: 'Peer', cell: (p) => idCell(p.id) },
  { key: 'address', label: 'Address', cell: (p) => (p.address ? h('span', { class: 'mono' }, String(p.address)) : valueOrUnknown(null, 'not given')) },
  { key: 'latency_ms', label: 'Latency', cls: 'num', cell: (p) => valueOrUnknown(isNum(p.latency_ms) ? fmtDuration(p.latency_ms / 1000) : null, 'not given') },
  { key: 'version', label: 'Version', cell: (p) => valueOrUnknown(p.version ? String(p.version) : null, 'not given') },
  { key: 'is_validator', label: 'Validator', cell: (p) => valueOrUnknown(typeof p.is_validator === 'boolean' ? (p.is_validator ? 'yes' : 'no') : null, 'not given') },
  { key: 'reputation', label: 'Reputation', cls: 'num', cell: (p) => numCell(p.reputation) },
  { key: 'connected_at', label: 'Connected', cell: (p) => (isNum(p.connected_at) ? timeCell(p.connected_at) : valueOrUnknown(null, 'not given')) },
];

function marketSelect(id, label) {
  const select = h('select', { id, class: 'select' },
    h('option', { value: '' }, 'All markets'),
    MARKET_FILTERS.map((m) => h('option', { value: m }, marketLabel(m))));
  return {
    select,
    field: h('div', { class: 'field' }, h('label', { for: id }, label), select),
  };
}

export class OperationsPanel {
  constructor(client) {
    this.client = client;
    const titleId = 'operations-title';
    // Three tabs (operations, receipts, peers): one table at a time keeps the page short.
    this.tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Operations, receipts and peers' });
    this.root = h('section', { class: 'panel panel-operations', id: 'operations', 'aria-labelledby': titleId },
      h('header', { class: 'panel-head' },
        h('div', { class: 'panel-titles' }, h('h2', { id: titleId }, 'Activity')),
        this.tabs));
    this.showAll = false;
    this.peerSort = { key: 'id', dir: 1 };

    // Recent operations.
    this.opsFresh = h('p', { class: 'freshness' });
    const opsFilter = marketSelect('ops-market', 'Market');
    this.opsSelect = opsFilter.select;
    this.opsSelect.addEventListener('change', () => this.renderOperations());
    this.opsCounts = h('div', { class: 'chips', 'aria-label': 'Operations by market' });
    this.opsBody = h('div', { class: 'sub-body' });
    this.moreBtn = h('button', { type: 'button', class: 'btn btn-small', id: 'ops-more', hidden: true });
    this.moreBtn.addEventListener('click', () => {
      this.showAll = !this.showAll;
      this.renderOperations();
    });
    this.root.append(h('div', { class: 'subsection', id: 'recent-operations' },
      h('header', { class: 'sub-head' },
        h('div', { class: 'panel-titles' }, h('h3', {}, 'Recent operations'), this.opsFresh),
        h('div', { class: 'controls' }, opsFilter.field)),
      this.opsCounts,
      this.opsBody,
      this.moreBtn));

    // Receipts audit trail.
    this.receiptsFresh = h('p', { class: 'freshness' });
    const rFilter = marketSelect('receipts-market', 'Market');
    this.receiptsSelect = rFilter.select;
    this.receiptsSelect.addEventListener('change', () => {
      this.client.setReceiptsQuery({ market: this.receiptsSelect.value, offset: 0 });
      this.renderReceipts();
    });
    this.prevBtn = h('button', { type: 'button', class: 'btn', id: 'receipts-prev' }, '‹ Previous');
    this.nextBtn = h('button', { type: 'button', class: 'btn', id: 'receipts-next' }, 'Next ›');
    this.pageLabel = h('span', { class: 'page-label', id: 'receipts-page', 'aria-live': 'polite' }, '');
    this.prevBtn.addEventListener('click', () => this.page(-1));
    this.nextBtn.addEventListener('click', () => this.page(1));
    this.receiptsBody = h('div', { class: 'sub-body' });
    this.root.append(h('div', { class: 'subsection', id: 'receipts' },
      h('header', { class: 'sub-head' },
        h('div', { class: 'panel-titles' }, h('h3', {}, 'Receipts audit trail'), this.receiptsFresh),
        h('div', { class: 'controls' }, rFilter.field,
          h('div', { class: 'pager', role: 'group', 'aria-label': 'Receipts pages' },
            this.prevBtn, this.pageLabel, this.nextBtn))),
      this.receiptsBody));

    // Peers.
    this.peersFresh = h('p', { class: 'freshness' });
    this.peersCount = h('span', { class: 'summary-count' });
    this.peersBody = h('div', { class: 'sub-body' });
    this.root.append(h('div', { class: 'subsection', id: 'peers' },
      h('header', { class: 'sub-head' },
        h('div', { class: 'panel-titles' }, h('h3', {}, 'Peers'), this.peersFresh),
        h('div', { class: 'controls' }, this.peersCount)),
      this.peersBody));
    this.buildTabs();
  }

  buildTabs() {
    const buttons = TABS.map((t) => {
      const b = h('button', {
        type: 'button', role: 'tab', class: 'tab', id: `tab-${t.id}`, 'aria-controls': t.id,
      }, t.label);
      b.addEventListener('click', () => this.selectTab(t.id));
      b.addEventListener('keydown', (e) => {
        if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
        const i = TABS.findIndex((x) => x.id === t.id);
        const next = TABS[(i + (e.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
        this.selectTab(next.id);
        this.tabs.querySelector(`#tab-${next.id}`).focus();
      });
      return b;
    });
    replace(this.tabs, buttons);
    for (const t of TABS) {
      const el = this.root.querySelector(`#${t.id}`);
      el.setAttribute('role', 'tabpanel');
      el.setAttribute('aria-labelledby', `tab-${t.id}`);
    }
    this.selectTab(TABS[0].id);
  }

  selectTab(id) {
    for (const t of TABS) {
      const on = t.id === id;
      const b = this.tabs.querySelector(`#tab-${t.id}`);
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      this.root.querySelector(`#${t.id}`).hidden = !on;
    }
    checkScrollHints();
  }

  update() {
    this.renderOperations();
    this.renderReceipts();
    this.renderPeers();
  }

  tick(nowMs) {
    renderFreshness(this.opsFresh, this.client.sections.operations, nowMs);
    renderFreshness(this.receiptsFresh, this.client.currentReceipts(), nowMs);
    renderFreshness(this.peersFresh, this.client.sections.peers, nowMs);
  }

  renderOperations() {
    const section = this.client.sections.operations;
    renderFreshness(this.opsFresh, section);
    const body = section && section.body;
    const served = !!(body && Array.isArray(body.operations));
    this.opsSelect.disabled = !served;
    if (!served) {
      replace(this.opsCounts);
      this.opsBody.dataset.renderKey = '';
      replace(this.opsBody, errorCallout(section && section.body ? { error: { message: 'the body has no operations list' } } : section, 'operations'));
      return;
    }
    const byMarket = body.by_market && typeof body.by_market === 'object' ? body.by_market : {};
    const market = this.opsSelect.value;
    let rows = body.operations;
    if (market) rows = Array.isArray(byMarket[market]) ? byMarket[market] : rows.filter((r) => marketOf(r) === market);

    const counts = Object.entries(byMarket).filter(([, list]) => Array.isArray(list));
    renderIfChanged(this.opsCounts, JSON.stringify(counts.map(([k, l]) => [k, l.length])), () => counts.map(([k, list]) => h('span', { class: 'chip' },
      h('span', { class: ['tag', 'tag-market', `tag-${k}`], 'data-market': k }, marketLabel(k)), ` ${fmtInt(list.length)}`)));

    const total = isNum(body.total) ? body.total : null;
    const limit = this.showAll ? MAX_OPERATION_ROWS : FIRST_OPERATION_ROWS;
    const shown = rows.slice(0, limit);
    const more = Math.min(rows.length, MAX_OPERATION_ROWS) > FIRST_OPERATION_ROWS;
    this.moreBtn.hidden = !more;
    this.moreBtn.textContent = this.showAll ? 'Show fewer' : `Show ${fmtInt(Math.min(rows.length, MAX_OPERATION_ROWS))}`;
    this.moreBtn.setAttribute('aria-expanded', String(this.showAll));
    renderIfChanged(this.opsBody, JSON.stringify([market, shown, total]), () => {
      if (!shown.length) {
        return h('p', { class: 'empty' }, market ? `No recent ${marketLabel(market)} operations.` : 'No recent operations.');
      }
      const note = rows.length > shown.length || (total !== null && !market && total > shown.length)
        ? h('p', { class: 'panel-note' }, `Showing the ${fmtInt(shown.length)} most recent of ${fmtInt(market ? rows.length : total ?? rows.length)}.`)
        : null;
      return [table(market ? `Recent ${marketLabel(market)} operations` : 'Recent operations', ACTIVITY_COLUMNS, shown, { 'data-table': 'operations' }), note];
    });
  }

  page(delta) {
    const q = this.client.receiptsQuery;
    const offset = Math.max(0, q.offset + delta * RECEIPTS_PAGE_SIZE);
    this.client.setReceiptsQuery({ market: q.market, offset });
    this.renderReceipts();
  }

  renderReceipts() {
    const q = this.client.receiptsQuery;
    if (this.receiptsSelect.value !== q.market) this.receiptsSelect.value = q.market;
    const served = this.client.receiptsServed();
    const section = this.client.currentReceipts();
    renderFreshness(this.receiptsFresh, section);
    this.receiptsSelect.disabled = !served;
    const body = section && section.body;
    if (!served) {
      this.prevBtn.disabled = true;
      this.nextBtn.disabled = true;
      this.pageLabel.textContent = '';
      this.receiptsBody.dataset.renderKey = '';
      replace(this.receiptsBody, errorCallout(this.client.sections.receipts, 'receipts'));
      return;
    }
    const page = Math.floor(q.offset / RECEIPTS_PAGE_SIZE) + 1;
    if (!section) {
      this.prevBtn.disabled = q.offset === 0;
      this.nextBtn.disabled = true;
      this.pageLabel.textContent = `Page ${fmtInt(page)}`;
      this.receiptsBody.dataset.renderKey = '';
      replace(this.receiptsBody, h('p', { class: 'empty' }, 'Loading…'));
      return;
    }
    if (!body || !Array.isArray(body.receipts)) {
      this.prevBtn.disabled = q.offset === 0;
      this.nextBtn.disabled = true;
      this.receiptsBody.dataset.renderKey = '';
      replace(this.receiptsBody, errorCallout(section, 'receipts'));
      return;
    }
    const limit = isNum(body.limit) && body.limit > 0 ? body.limit : RECEIPTS_PAGE_SIZE;
    const total = isNum(body.total) ? body.total : null;
    const pages = total !== null ? Math.max(1, Math.ceil(total / limit)) : null;
    this.prevBtn.disabled = q.offset === 0;
    this.nextBtn.disabled = total !== null ? q.offset + limit >= total : body.receipts.length < limit;
    this.pageLabel.textContent = pages !== null
      ? `Page ${fmtInt(page)} of ${fmtInt(pages)} · ${fmtInt(total)} receipts`
      : `Page ${fmtInt(page)}`;
    renderIfChanged(this.receiptsBody, JSON.stringify([q, body.receipts]), () => {
      if (!body.receipts.length) {
        return h('p', { class: 'empty' }, q.market ? `No ${marketLabel(q.market)} receipts on this page.` : 'No receipts on this page.');
      }
      return table('Receipts', RECEIPT_COLUMNS, body.receipts, { 'data-table': 'receipts' });
    });
  }

  renderPeers() {
    const section = this.client.sections.peers;
    renderFreshness(this.peersFresh, section);
    const body = section && section.body;
    if (!body) {
      replace(this.peersCount);
      this.peersBody.dataset.renderKey = '';
      replace(this.peersBody, errorCallout(section, 'peer list'));
      return;
    }
    const unavailable = body.unavailable && typeof body.unavailable === 'object' ? body.unavailable : {};
    if (!Array.isArray(body.peers)) {
      replace(this.peersCount);
      this.peersBody.dataset.renderKey = '';
      replace(this.peersBody, h('div', { class: 'callout callout-warn', role: 'note' },
        h('strong', {}, 'Peer list unknown: '), unavailable.peers || 'the node did not give it'));
      return;
    }
    const total = isNum(body.total) ? body.total : null;
    replace(this.peersCount, total === null ? 'count unknown'
      : `${fmtInt(total)} peer${total === 1 ? '' : 's'}${body.truncated === true ? ' (list truncated)' : ''}`);
    const peers = body.peers.filter((p) => p && typeof p === 'object');
    const key = JSON.stringify([peers, unavailable, this.peerSort]);
    renderIfChanged(this.peersBody, key, () => {
      if (!peers.length) return h('p', { class: 'empty' }, 'No peers connected.');
      // A column the node gives for no peer at all is dropped and named below instead of
      // filling the table with "unknown".
      const missing = PEER_COLUMNS.filter((c) => c.key !== 'id'
        && peers.every((p) => p[c.key] === null || p[c.key] === undefined));
      const cols = PEER_COLUMNS.filter((c) => !missing.includes(c));
      const note = missing.length
        ? h('p', { class: 'panel-note' }, 'Not reported by the node: ',
          missing.map((c, i) => [i ? ', ' : '', h('span', { class: 'unknown-field', title: unavailable[c.key] || 'not given for any peer' }, c.label.toLowerCase())]), '.')
        : null;
      const { key: sortKey, dir } = this.peerSort;
      const sorted = [...peers].sort((a, b) => dir * compareValues(a[sortKey], b[sortKey])
        || String(a.id).localeCompare(String(b.id)));
      return [table('Connected peers', cols, sorted, { 'data-table': 'peers' }, {
        sort: this.peerSort,
        onSort: (k) => {
          this.peerSort = { key: k, dir: this.peerSort.key === k ? -this.peerSort.dir : 1 };
          this.renderPeers();
          const btn = this.peersBody.querySelector(`th[data-col=${k}] button`);
          if (btn) btn.focus();
        },
      }), note];
    });
  }
}


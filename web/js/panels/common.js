// Pieces shared by the panels: the panel frame, the freshness line, error callouts, tables.

import { h, replace } from '../dom.js';
import { fmtAge, fmtAgo, fmtDateTime, isNum } from '../format.js';
import { sectionAge } from '../status.js';

/** A panel frame: <section> with a heading, a freshness line and a body. */
export function panel(id, title, extraClass) {
  const titleId = `${id}-title`;
  const freshness = h('p', { class: 'freshness', 'aria-live': 'off' });
  const tools = h('div', { class: 'panel-tools' });
  const body = h('div', { class: 'panel-body' });
  const root = h('section', { class: ['panel', extraClass], id, 'aria-labelledby': titleId },
    h('header', { class: 'panel-head' },
      h('div', { class: 'panel-titles' }, h('h2', { id: titleId }, title), freshness),
      tools),
    body);
  return { root, body, freshness, tools };
}

/**
 * "updated 3 s ago" from a section's age, or "stale · 45 s old" (reason as tooltip), or the
 * section's error. Also used every second by the ticker.
 */
export function renderFreshness(el, section, nowMs = Date.now()) {
  el.classList.remove('is-stale', 'is-error');
  el.removeAttribute('title');
  if (!section) {
    el.textContent = 'waiting for data';
    return;
  }
  if (!section.body) {
    el.textContent = 'no data';
    el.classList.add('is-error');
    if (section.error) el.title = section.error.message;
    return;
  }
  const age = sectionAge(section, nowMs);
  const ageText = age === null ? null : fmtAge(age);
  if (section.body.stale === true) {
    el.textContent = ageText ? `stale · data ${ageText} old` : 'stale';
    el.classList.add('is-stale');
    if (section.body.stale_reason) el.title = section.body.stale_reason;
    return;
  }
  el.textContent = ageText ? `updated ${ageText} ago` : 'updated';
}

/** The message an endpoint gave instead of data, as a callout. */
export function errorCallout(section, what) {
  const message = section && section.error ? section.error.message : `no ${what} yet`;
  return h('div', { class: 'callout callout-warn', role: 'note' },
    h('strong', {}, `No ${what}: `), message);
}

/** A time cell: relative ("3 s ago"), kept current by the ticker through data-ts. */
export function timeCell(unixSeconds) {
  if (!isNum(unixSeconds)) return h('span', { class: 'value unknown', title: 'no timestamp given' }, 'unknown');
  return h('time', {
    class: 'rel-time',
    datetime: new Date(unixSeconds * 1000).toISOString(),
    title: fmtDateTime(unixSeconds),  // absolute, with the time zone
    'data-ts': String(unixSeconds),
  }, fmtAgo(unixSeconds));
}

/** Refreshes every relative time under `root`. */
export function tickRelativeTimes(root, nowMs = Date.now()) {
  for (const el of root.querySelectorAll('[data-ts]')) {
    const text = fmtAgo(Number(el.dataset.ts), nowMs);
    if (el.textContent !== text) el.textContent = text;
  }
}

/**
 * A table: columns [{key, label, cell(row) -> Node|string, cls}], rows. `caption` is read by
 * screen readers and shown as a small heading.
 */
export function table(caption, columns, rows, attrs = {}, sorting = null) {
  const head = (c) => {
    if (!sorting) return h('th', { scope: 'col', class: c.cls, 'data-col': c.key }, c.label);
    const on = sorting.sort.key === c.key;
    const dir = on ? (sorting.sort.dir > 0 ? 'ascending' : 'descending') : 'none';
    const btn = h('button', { type: 'button', class: 'sort-btn', title: `Sort by ${c.label.toLowerCase()}` },
      c.label, h('span', { class: 'sort-icon', 'aria-hidden': 'true' }, on ? (sorting.sort.dir > 0 ? ' ▲' : ' ▼') : ' ↕'));
    btn.addEventListener('click', () => sorting.onSort(c.key));
    return h('th', { scope: 'col', class: c.cls, 'data-col': c.key, 'aria-sort': dir }, btn);
  };
  const wrap = h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', { class: 'data-table', ...attrs },
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, columns.map(head))),
      h('tbody', {}, rows.map((row) => h('tr', {},
        columns.map((c) => h('td', { class: c.cls, 'data-col': c.key }, c.cell(row))))))));
  const hint = h('p', { class: 'scroll-hint', hidden: true, 'aria-hidden': 'true' }, 'Scroll sideways for more columns →');
  const box = h('div', { class: 'table-box' }, hint, wrap);
  watchOverflow(wrap, hint);
  return box;
}

// Tables wider than their box (on a phone) say so above them; rechecked on resize.
const overflowing = new Set();
function checkOverflow({ wrap, hint }) {
  if (!wrap.isConnected) return false;
  const more = wrap.scrollWidth > wrap.clientWidth + 1;
  hint.hidden = !more;
  wrap.classList.toggle('scrolls', more);
  return true;
}
function watchOverflow(wrap, hint) {
  const entry = { wrap, hint };
  for (const e of [...overflowing]) if (!e.wrap.isConnected) overflowing.delete(e);
  overflowing.add(entry);
  requestAnimationFrame(() => checkOverflow(entry));
}
/** Rechecks every table (after a resize, or a tab showing a table built while hidden). */
export function checkScrollHints() {
  for (const e of [...overflowing]) if (!checkOverflow(e)) overflowing.delete(e);
}
window.addEventListener('resize', checkScrollHints);

/** Replaces `el`'s children only when `key` changed since the last call (keeps selections). */
export function renderIfChanged(el, key, build) {
  if (el.dataset.renderKey === key) return false;
  el.dataset.renderKey = key;
  replace(el, build());
  return true;
}

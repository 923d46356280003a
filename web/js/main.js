// Block Buster dashboard: entry point. Reads the runtime config, builds the view for the route,
// and re-renders on every change the live client reports; a one-second ticker keeps the ages
// and the connection pill truthful between updates.

import { loadConfig } from './config.js';
import { h, replace } from './dom.js';
import { LiveClient, setApiToken } from './live.js';
import { connectionState } from './status.js';
import { initTheme } from './theme.js';
import { tickRelativeTimes } from './panels/common.js';
import { HealthStrip } from './panels/health.js';
import { MarketsPanel } from './panels/markets.js';
import { NetworkPanel } from './panels/network.js';
import { OperationsPanel } from './panels/operations.js';

const DEFAULT_ROUTE = 'theblock';

function currentRoute() {
  const hash = window.location.hash.replace(/^#\/?/, '');
  return hash === '' ? DEFAULT_ROUTE : hash.split(/[/?]/)[0];
}

function renderPill(pillEl, state) {
  if (pillEl.dataset.state !== state.kind) {
    pillEl.dataset.state = state.kind;
    pillEl.className = `pill pill-${state.kind}`;
    pillEl.querySelector('.pill-label').textContent = state.label;
  }
  const detail = pillEl.querySelector('.pill-detail');
  if (detail.textContent !== state.detail) detail.textContent = state.detail;
  if (pillEl.title !== state.reason) pillEl.title = state.reason;
}

async function main() {
  initTheme(document.getElementById('theme-toggle'));
  const viewEl = document.getElementById('view');
  const pillEl = document.getElementById('conn-pill');

  const config = await loadConfig();

  setApiToken(config.token);
  document.getElementById('footer-version').textContent =
    config.version ? `Block Buster v${config.version}` : 'Block Buster';
  document.getElementById('footer-api').textContent = `API: ${config.apiBase} (${config.source})`;
  const transportEl = document.getElementById('footer-transport');

  let client = null;
  const health = new HealthStrip();
  const network = new NetworkPanel();
  const markets = new MarketsPanel();
  let operations = null;

  const render = (c) => {
    const state = connectionState(c);
    renderPill(pillEl, state);
    document.body.dataset.connection = state.kind;
    health.updateBanner(state);
    health.update(c.sections.health);
    network.update(c.sections.network_metrics);
    markets.update(c.sections.markets_health);
    operations.update();
    const transport = `updates: ${c.transport}, every ${(config.refreshMs / 1000).toFixed(0)} s`;
    if (transportEl.textContent !== transport) transportEl.textContent = transport;
  };

  client = new LiveClient(config, render);
  operations = new OperationsPanel(client);

  const dashboard = h('div', { class: 'dashboard' },
    config.warnings.map((w) => h('div', { class: 'banner banner-warn' }, w)),
    health.banner,
    health.root,
    h('div', { class: 'grid-top' }, network.root, markets.root),
    operations.root);

  const showRoute = () => {
    const route = currentRoute();
    for (const a of document.querySelectorAll('[data-route]')) {
      if (a.dataset.route === route) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (route === DEFAULT_ROUTE) {
      if (viewEl.firstChild !== dashboard) replace(viewEl, dashboard);
      document.title = 'Block Buster · The Block';
    } else {
      replace(viewEl, h('div', { class: 'panel not-found' },
        h('h2', {}, 'No such page'),
        h('p', {}, `There is no view "${route}". `, h('a', { href: '#/theblock' }, 'Open the network dashboard'), '.')));
      document.title = 'Block Buster · not found';
    }
  };
  if (!window.location.hash) window.history.replaceState(null, '', `#/${DEFAULT_ROUTE}`);
  window.addEventListener('hashchange', showRoute);
  showRoute();

  setInterval(() => {
    const now = Date.now();
    const state = connectionState(client, now);
    renderPill(pillEl, state);
    document.body.dataset.connection = state.kind;
    if (state.kind !== 'live') health.updateBanner(state);
    network.tick(now);
    markets.tick(now);
    operations.tick(now);
    tickRelativeTimes(viewEl, now);
  }, 1000);

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') client.refreshNow();
  });
  client.start();
}

main().catch((e) => {
  // Only a bug gets here (every network failure is handled); say so on the page too.
  console.error('Block Buster: the dashboard failed to start', e);
  const view = document.getElementById('view');
  if (view) {
    view.replaceChildren(h('div', { class: 'banner banner-bad' },
      `The dashboard failed to start: ${e && e.message ? e.message : e}. Reload the page; if it persists, report it.`));
  }
});

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
import { PluginsPanel } from './panels/plugins.js';

const DEFAULT_ROUTE = 'theblock';
const TITLE = 'Block Buster · The Block';

/** The tab title carries the state, so a page in a background tab still says it is not live. */
function titleFor(state) {
  if (state.kind === 'live') return TITLE;
  const word = { stale: '⚠ Stale', disconnected: '✕ Disconnected', connecting: 'Connecting' }[state.kind] || state.kind;
  return `${word} · ${TITLE}`;
}

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

  if (config.grafanaUrl) {
    const link = document.getElementById('grafana-link');
    link.href = config.grafanaUrl;
    link.hidden = false;
  }

  let client = null;
  const health = new HealthStrip();
  let network = null;
  let markets = null;
  let operations = null;
  let plugins = null;
  let onDashboard = true;
  const showState = (state) => {
    renderPill(pillEl, state);
    document.body.dataset.connection = state.kind;
    const title = onDashboard ? titleFor(state) : 'Block Buster · not found';
    if (document.title !== title) document.title = title;
  };

  const render = (c) => {
    const state = connectionState(c);
    showState(state);
    health.updateBanner(state);
    health.update(c.sections.health);
    network.update(c.sections.network_metrics);
    markets.update(c.sections.markets_health);
    operations.update();
    const transport = `updates: ${c.transport}, every ${(config.refreshMs / 1000).toFixed(0)} s`;
    if (transportEl.textContent !== transport) transportEl.textContent = transport;
  };

  client = new LiveClient(config, render);
  network = new NetworkPanel(client, config);
  markets = new MarketsPanel(client, () => network.chartWindowMs());
  client.historySeries.push(...MarketsPanel.historySeries());
  operations = new OperationsPanel(client);
  plugins = new PluginsPanel(config);

  const dashboard = h('div', { class: 'dashboard' },
    config.warnings.map((w) => h('div', { class: 'banner banner-warn' }, w)),
    health.banner,
    health.root,
    h('div', { class: 'grid-top' }, network.root, markets.root),
    operations.root,
    plugins.root);

  const showRoute = () => {
    const route = currentRoute();
    for (const a of document.querySelectorAll('[data-route]')) {
      if (a.dataset.route === route) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    onDashboard = route === DEFAULT_ROUTE;
    if (route === DEFAULT_ROUTE) {
      if (viewEl.firstChild !== dashboard) replace(viewEl, dashboard);
      document.title = titleFor(connectionState(client));
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
    showState(state);
    if (state.kind !== 'live') health.updateBanner(state);
    health.tick(now, state.kind !== 'disconnected');
    network.tick(now);
    markets.tick(now);
    operations.tick(now);
    plugins.tick(now);
    tickRelativeTimes(viewEl, now);
  }, 1000);

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') client.refreshNow();
  });
  client.start();
  plugins.start();
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

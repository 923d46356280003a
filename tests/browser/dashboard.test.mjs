// End-to-end tests of the web dashboard in a real browser (Debian's Chromium, driven by
// playwright-core), against the real bb-devnode and blockbuster-agent on loopback.
//
//   BB_BIN_DIR=<build>/bin node --test dashboard.test.mjs      (or: ctest -L browser)
//
// The node runs with --block-ms 0, so the chain only moves when the test advances it: the
// values on the page can then be compared exactly with the API's.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  after, before, describe, it, test,
} from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  getJson, postJson, startAgent, startDevnode, stopProcess, tempDir, waitFor,
} from './lib/processes.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.BB_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.BB_ARTIFACT_DIR || path.join(HERE, 'artifacts');
const PAGE_SIZE = 20;

/** What is missing to run these tests, as instructions; [] when nothing is. */
function missingPrerequisites() {
  const missing = [];
  if (!fs.existsSync(path.join(HERE, 'node_modules', 'playwright-core', 'package.json'))) {
    missing.push('playwright-core is not installed: run `npm ci --prefix tests/browser`');
  }
  if (!fs.existsSync(CHROMIUM)) {
    missing.push(`${CHROMIUM} is missing: run \`apt-get install -y chromium\` (or set BB_CHROMIUM)`);
  }
  const bin = process.env.BB_BIN_DIR;
  if (!bin) {
    missing.push('BB_BIN_DIR is not set: point it at the build\'s bin/ directory (ctest sets it)');
  } else {
    for (const exe of ['bb-devnode', 'blockbuster-agent']) {
      if (!fs.existsSync(path.join(bin, exe))) {
        missing.push(`${path.join(bin, exe)} is missing: cmake --build <build> --target blockbuster-agent bb-devnode bb_network bb_compute bb_storage bb_energy bb_ads bb_receipts`);
      }
    }
  }
  return missing;
}

/** The digits of a number as shown ("1,234" -> 1234, "51" -> 51); NaN for "unknown". */
function shownNumber(text) {
  const t = (text || '').trim();
  if (!/\d/.test(t)) return Number.NaN;
  return Number(t.replace(/[^0-9.-]/g, ''));
}

const MISSING = missingPrerequisites();

// Fails (never skips) when something is missing, saying how to install it.
test('prerequisites: Chromium, playwright-core and the built agent and bb-devnode', () => {
  assert.deepEqual(MISSING, [], `cannot run the browser tests:\n  - ${MISSING.join('\n  - ')}`);
});

describe('web dashboard in Chromium', {
  timeout: 170000,
  skip: MISSING.length ? 'prerequisites missing: see the failed prerequisites test' : false,
}, () => {
  const env = {
    dirs: [],
    devnode: null,
    agent: null,
    context: null,
    page: null,
    console: [],
    phase: 'start',
    dashboardPolls: 0,
    wsConnections: 0,
    wsFrames: 0,
  };

  const text = (selector) => env.page.textContent(selector, { timeout: 5000 });
  const pillState = () => env.page.getAttribute('#conn-pill', 'data-state', { timeout: 5000 });
  const api = async (p) => getJson(`${env.agent.api}${p}`);
  const shot = async (name) => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await env.page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
  };

  before(async () => {
    const { chromium } = await import('playwright-core');
    const binDir = process.env.BB_BIN_DIR;
    const home = tempDir('bb-browser-home-');
    const profile = tempDir('bb-browser-profile-');
    env.dirs.push(home, profile);

    env.devnode = await startDevnode(binDir, { extraArgs: ['--block-ms', '0'] });
    env.agent = await startAgent(binDir, env.devnode.url, home);

    env.context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1366, height: 900 },
      locale: 'en-US',
      colorScheme: 'light',
      timeout: 30000,
    });
    env.page = env.context.pages()[0] || await env.context.newPage();
    env.page.setDefaultTimeout(10000);
    env.page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') {
        env.console.push({ phase: env.phase, type: m.type(), text: m.text() });
      }
    });
    env.page.on('pageerror', (e) => env.console.push({ phase: env.phase, type: 'pageerror', text: e.message }));
    env.page.on('request', (r) => {
      if (r.url().startsWith(`${env.agent.api}/theblock/dashboard`)) env.dashboardPolls += 1;
    });
    // The page takes live data from the agent's WebSocket stream when it connects (the agent
    // announces it in /bb-config.json), and polls otherwise: count both kinds of update.
    env.page.on('websocket', (ws) => {
      env.wsConnections += 1;
      ws.on('framereceived', () => { env.wsFrames += 1; });
    });
    env.phase = 'agent up';
    await env.page.goto(`${env.agent.web}/#/theblock`, { waitUntil: 'load', timeout: 15000 });
  });

  after(async () => {
    if (env.page) await shot('dashboard-final.png').catch(() => {});
    if (env.context) await env.context.close().catch(() => {});
    await stopProcess(env.agent && env.agent.child);
    await stopProcess(env.devnode && env.devnode.child);
    for (const d of env.dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('shows the same values as the API', async () => {
    await waitFor('the pill to say live', async () => (await pillState()) === 'live', { timeoutMs: 20000 });
    // The node is still (no blocks), so the page converges on exactly the API's values.
    await waitFor('the network panel to match /theblock/network/metrics', async () => {
      const { status, body } = await api('/theblock/network/metrics');
      assert.equal(status, 200, 'the agent has network data');
      const shown = {
        strength: shownNumber(await text('[data-field=network_strength]')),
        height: shownNumber(await text('[data-field=block_height]')),
        peers: shownNumber(await text('[data-field=peer_count]')),
      };
      return shown.strength === body.network_strength && shown.height === body.block_height
        && shown.peers === body.peer_count;
    }, { timeoutMs: 15000 });

    await waitFor('the compute card to match /theblock/markets/health', async () => {
      const { body } = await api('/theblock/markets/health');
      const compute = body.markets.compute;
      const status = await text('[data-market=compute] [data-field=status]');
      if (!status.toLowerCase().includes(compute.status)) return false;
      if (typeof compute.total_providers !== 'number') {
        // Unknown must read "unknown", never 0.
        return (await text('[data-market=compute] [data-field=total_providers]')).trim() === 'unknown';
      }
      return shownNumber(await text('[data-market=compute] [data-field=total_providers]')) === compute.total_providers;
    }, { timeoutMs: 15000 });

    const overall = await api('/theblock/markets/health');
    const count = await text('[data-field=healthy_markets]');
    assert.equal(count, `${overall.body.healthy_markets} of ${overall.body.total_markets} healthy`);

    const health = await api('/health');
    assert.equal(health.status, 200);
    const badge = (await text('[data-field=health_status]')).toLowerCase();
    assert.ok(badge.includes(health.body.status === 'ok' ? 'ok' : 'degraded'), `health badge "${badge}" vs ${health.body.status}`);
    await shot('dashboard-live.png');
  });

  it('follows the chain as it moves, by itself (stream or polling)', async () => {
    const before = (await api('/theblock/network/metrics')).body.block_height;
    const updatesBefore = env.dashboardPolls + env.wsFrames;
    const advanced = await postJson(`${env.devnode.url}/_devnode/advance`, { blocks: 5 });
    assert.equal(advanced.status, 200, `POST /_devnode/advance: ${JSON.stringify(advanced.body)}`);
    await waitFor('the API to report the new height', async () => (await api('/theblock/network/metrics')).body.block_height >= before + 5, { timeoutMs: 15000 });
    const expected = (await api('/theblock/network/metrics')).body;
    await waitFor(`the page to show height ${expected.block_height}`, async () => shownNumber(await text('[data-field=block_height]')) === expected.block_height, { timeoutMs: 15000 });
    await waitFor('the page to show the API\'s strength', async () => {
      const now = (await api('/theblock/network/metrics')).body;
      return shownNumber(await text('[data-field=network_strength]')) === now.network_strength;
    }, { timeoutMs: 15000 });
    assert.ok(env.dashboardPolls + env.wsFrames > updatesBefore,
      'the page received new data by itself (a WebSocket message or a poll of /theblock/dashboard)');
    assert.ok(env.wsConnections > 0, 'the page connected to the agent\'s WebSocket stream, as /bb-config.json announces');
    // The tiles' charts draw from the agent's history: at least two heights by now.
    const lines = await env.page.$$('.stat .chart .spark-line');
    assert.ok(lines.length > 0, 'the tiles\' charts are drawn');
  });

  it('gets the stream compressed, as a browser offers (permessage-deflate)', async () => {
    // Chromium offers permessage-deflate on every WebSocket; the agent accepts it and sends the
    // stream's messages compressed. The browser inflates them: what the page reads is JSON.
    const got = await env.page.evaluate(async () => {
      const cfg = await (await fetch('/bb-config.json')).json();
      const ws = new WebSocket(`ws://${location.hostname}:${cfg.ws_port}/theblock/ws`);
      return await new Promise((resolve) => {
        const seen = [];
        const done = () => { ws.close(); resolve({ extensions: ws.extensions, seen }); };
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          seen.push(`${m.type}:${m.stream || ''}`);
          if (seen.filter((x) => x.startsWith('snapshot:') || x.startsWith('update:')).length >= 3) done();
        };
        ws.onerror = () => resolve({ extensions: ws.extensions, seen, error: true });
        setTimeout(done, 8000);
      });
    });
    assert.ok(!got.error, 'the WebSocket opened');
    assert.match(got.extensions, /permessage-deflate/, `negotiated extensions: "${got.extensions}"`);
    assert.ok(got.seen.filter((x) => /^(snapshot|update):/.test(x)).length >= 3,
      `stream messages read through the compressed connection: ${got.seen.join(', ')}`);
  });

  it('filters the operations by market and pages the receipts', async (t) => {
    const probe = await api(`/theblock/receipts?limit=${PAGE_SIZE}&offset=0`);
    if (probe.status === 404) {
      t.skip('/theblock/receipts answers 404: the receipts plugin (bb_receipts) is not built or not loaded; these checks become strict once it is');
      return;
    }
    await waitFor('receipts data', async () => (await api(`/theblock/receipts?limit=${PAGE_SIZE}&offset=0`)).status === 200, { timeoutMs: 15000 });
    // Operations, receipts and peers are tabs: one table at a time.
    await env.page.click('#tab-receipts');
    const first = (await api(`/theblock/receipts?limit=${PAGE_SIZE}&offset=0`)).body;
    assert.ok(Array.isArray(first.receipts), 'the receipts body has a receipts list');
    const pages = Math.max(1, Math.ceil(first.total / PAGE_SIZE));
    await waitFor(`"Page 1 of ${pages}"`, async () => (await text('#receipts-page')).startsWith(`Page 1 of ${pages}`), { timeoutMs: 15000 });

    if (first.total > PAGE_SIZE) {
      const second = (await api(`/theblock/receipts?limit=${PAGE_SIZE}&offset=${PAGE_SIZE}`)).body;
      await env.page.click('#receipts-next');
      await waitFor('page 2', async () => (await text('#receipts-page')).startsWith(`Page 2 of ${pages}`));
      await waitFor('page 2\'s first receipt', async () => {
        const id = await env.page.getAttribute('#receipts tbody tr:first-child td[data-col=id] span', 'title');
        return id === String(second.receipts[0].id);
      });
      await env.page.click('#receipts-prev');
      await waitFor('back on page 1', async () => (await text('#receipts-page')).startsWith('Page 1 of'));
    } else {
      assert.equal(await env.page.isDisabled('#receipts-next'), true, 'one page: Next is disabled');
    }

    await env.page.selectOption('#receipts-market', 'compute');
    const compute = (await api(`/theblock/receipts?limit=${PAGE_SIZE}&offset=0&market=compute`)).body;
    const computePages = Math.max(1, Math.ceil(compute.total / PAGE_SIZE));
    await waitFor('the compute receipts', async () => (await text('#receipts-page')).startsWith(`Page 1 of ${computePages}`));
    // Shown as the market cards name them ("Compute"); the API's name is on data-market.
    const receiptMarkets = await env.page.$$eval('#receipts tbody td[data-col=market] [data-market]', (els) => els.map((e) => e.dataset.market));
    assert.ok(receiptMarkets.every((m) => m === 'compute'), `only compute receipts: ${receiptMarkets}`);
    await env.page.selectOption('#receipts-market', '');

    const ops = await api('/theblock/operations');
    assert.equal(ops.status, 200, `/theblock/operations: ${JSON.stringify(ops.body)}`);
    await env.page.click('#tab-recent-operations');
    await env.page.selectOption('#ops-market', 'compute');
    await waitFor('the compute operations', async () => {
      const markets = await env.page.$$eval('#recent-operations tbody td[data-col=market] [data-market]', (els) => els.map((e) => e.dataset.market));
      const expected = Array.isArray(ops.body.by_market && ops.body.by_market.compute) ? ops.body.by_market.compute.length : null;
      if (expected === 0) return (await text('#recent-operations .sub-body')).includes('No recent Compute operations');
      return markets.length > 0 && markets.every((m) => m === 'compute');
    });
    await env.page.selectOption('#ops-market', '');
  });

  it('toggles the theme and remembers it across a reload', async () => {
    assert.equal(await env.page.getAttribute('html', 'data-theme'), null, 'follows the system theme at first');
    await env.page.focus('#theme-toggle');
    await env.page.keyboard.press('Enter');
    assert.equal(await env.page.getAttribute('html', 'data-theme'), 'dark');
    await env.page.reload({ waitUntil: 'load' });
    assert.equal(await env.page.getAttribute('html', 'data-theme'), 'dark', 'remembered after a reload');
    assert.equal(await env.page.getAttribute('#theme-toggle', 'aria-pressed'), 'true');
    await env.page.click('#theme-toggle');
    assert.equal(await env.page.getAttribute('html', 'data-theme'), 'light');
    await waitFor('live again after the reload', async () => (await pillState()) === 'live', { timeoutMs: 15000 });
  });

  it('turns stale when the node stops, and live again when it returns', async () => {
    const port = env.devnode.port;
    env.phase = 'node down';
    await stopProcess(env.devnode.child);
    await waitFor('the pill to say stale', async () => (await pillState()) === 'stale', { timeoutMs: 20000 });
    const detail = await text('#conn-pill .pill-detail');
    assert.match(detail, /\d+ s|min|no network data|unreachable/, `the pill says how old the data is: "${detail}"`);
    assert.equal(await env.page.isVisible('#conn-banner'), true, 'a banner explains the stale state');
    await shot('dashboard-stale.png');

    // The same port again, so the running agent finds the node where it was.
    env.devnode = await waitFor('bb-devnode to listen again on its port', async () => {
      try {
        return await startDevnode(process.env.BB_BIN_DIR, { port, extraArgs: ['--block-ms', '0'] });
      } catch (e) {
        if (/cannot listen|Address already in use/i.test(e.message)) return null;
        throw e;
      }
    }, { timeoutMs: 20000, intervalMs: 500 });
    env.phase = 'node back';
    await waitFor('the pill to say live again', async () => (await pillState()) === 'live', { timeoutMs: 30000 });
    assert.equal(await env.page.isVisible('#conn-banner'), false, 'the banner is gone');
  });

  it('printed no console error or warning while the agent answered', () => {
    assert.deepEqual(env.console, [], 'console errors, warnings or page errors');
  });

  it('turns disconnected when the agent stops', async () => {
    env.phase = 'agent down';  // the browser logs the refused requests from here on: expected
    await stopProcess(env.agent.child);
    await waitFor('the pill to say disconnected', async () => (await pillState()) === 'disconnected', { timeoutMs: 15000 });
    assert.equal(await env.page.isVisible('#conn-banner'), true, 'a banner explains it');
    assert.match(await text('#conn-banner'), /not answering/);
    await shot('dashboard-disconnected.png');
    const pageErrors = env.console.filter((c) => c.type === 'pageerror');
    assert.deepEqual(pageErrors, [], 'no uncaught exception in the page');
  });
});

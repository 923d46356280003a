// The page an operator keeps open all day, in a real browser (Debian's Chromium via
// playwright-core) against the real agent and bb-devnode (issue 18, docs/dashboard.md):
// history charts full at first paint after an agent restart, hover values with their time, the
// last-block tile turning red when the node stops producing blocks, the uptime counting, the
// state in the tab title, the hello plugin in the Plugins panel, contrast in both themes, the
// phone layout. Screenshots of every run go to $BB_ARTIFACT_DIR (desktop and phone width).
//
//   BB_BIN_DIR=<build>/bin BB_EXTRA_PLUGIN_DIR=<build>/tests/browser/extra-plugins \
//     node --test history.test.mjs

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
const BIN = process.env.BB_BIN_DIR;
const EXTRA = process.env.BB_EXTRA_PLUGIN_DIR
  || (BIN ? path.join(BIN, '..', 'tests', 'browser', 'extra-plugins') : '');
const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };

function missingPrerequisites() {
  const missing = [];
  if (!fs.existsSync(path.join(HERE, 'node_modules', 'playwright-core', 'package.json')))
    missing.push('playwright-core is not installed: run `npm ci --prefix tests/browser`');
  if (!fs.existsSync(CHROMIUM)) missing.push(`${CHROMIUM} is missing: apt-get install -y chromium`);
  if (!BIN) missing.push('BB_BIN_DIR is not set (ctest sets it)');
  else {
    for (const exe of ['bb-devnode', 'blockbuster-agent'])
      if (!fs.existsSync(path.join(BIN, exe))) missing.push(`${path.join(BIN, exe)} is missing: build it`);
    if (!fs.existsSync(path.join(EXTRA, 'bb_hello.so')))
      missing.push(`${path.join(EXTRA, 'bb_hello.so')} is missing: cmake --build <build> --target bb_hello`);
  }
  return missing;
}

const MISSING = missingPrerequisites();

test('prerequisites: Chromium, playwright-core, the agent, bb-devnode and the hello plugin', () => {
  assert.deepEqual(MISSING, [], `cannot run the browser tests:\n  - ${MISSING.join('\n  - ')}`);
});

/** The agent's plugins and the SDK's hello example in one directory. */
function pluginDir(dir) {
  const own = path.join(BIN, '..', 'lib', 'blockbuster', 'plugins');
  for (const f of fs.readdirSync(own)) if (f.endsWith('.so')) fs.symlinkSync(path.join(own, f), path.join(dir, f));
  fs.symlinkSync(path.join(EXTRA, 'bb_hello.so'), path.join(dir, 'bb_hello.so'));
  return dir;
}

/** Seconds in "1 min 5 s", "7 s", "1 h 2 min". */
function shownSeconds(text) {
  let s = 0;
  for (const [, n, unit] of (text || '').matchAll(/([\d.]+)\s*(ms|s|min|h|d)\b/g)) {
    s += Number(n) * { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 }[unit];
  }
  return s;
}

// Every visible text on the page whose contrast with its background is under 4.5:1 (WCAG AA for
// normal text), from the computed colours; the background is the nearest opaque one.
function contrastFailures() {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => {
      const x = v / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const blend = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i -= 1) bg = blend(layers[i], bg);
    return bg;
  };
  const failures = [];
  let min = Infinity;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const el = n.parentElement;
    if (!el || seen.has(el)) continue;
    seen.add(el);
    if (el.closest('[hidden], .sr-only, svg, option, noscript')) continue;
    if (el.closest('button:disabled, select:disabled')) continue;  // inactive controls are exempt
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden') continue;
    const bg = background(el);
    const fg = blend(parse(st.color), bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    min = Math.min(min, ratio);
    if (ratio < 4.5) {
      failures.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} "${n.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)} (${st.color} on rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)}))`);
    }
  }
  return { failures, min };
}

describe('the page kept open all day', {
  timeout: 200000,
  skip: MISSING.length ? 'prerequisites missing: see the failed prerequisites test' : false,
}, () => {
  const env = {
    dirs: [], devnode: null, agent: null, context: null, page: null, home: null, yaml: null,
    beforeRestart: 0, console: [], historyRequests: [],
  };
  const text = (selector) => env.page.textContent(selector, { timeout: 5000 });
  const api = async (p) => getJson(`${env.agent.api}${p}`);
  const shot = async (name, fullPage = true) => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await env.page.screenshot({ path: path.join(ARTIFACTS, name), fullPage });
  };

  before(async () => {
    const { chromium } = await import('playwright-core');
    env.home = tempDir('bb-history-home-');
    const plugins = pluginDir(tempDir('bb-history-plugins-'));
    const profile = tempDir('bb-history-profile-');
    env.dirs.push(env.home, plugins, profile);
    env.devnode = await startDevnode(BIN, { extraArgs: ['--block-ms', '0'] });
    env.yaml = [
      `plugin_dir: ${JSON.stringify(plugins)}`,
      'web:',
      '  grafana_url: "http://127.0.0.1:9/d/blockbuster"',
      '  last_block_warn_seconds: 3',
      '  last_block_critical_seconds: 6',
      'plugins:',
      '  network:',
      '    interval_ms: 1000',
      '  hello:',
      '    interval_ms: 1000',
      '    isolation: process',  // its marked metric crosses the runner's channel
      '',
    ].join('\n');
    env.agent = await startAgent(BIN, env.devnode.url, env.home, { configYaml: env.yaml });

    // History before the restart: a moving chain for a while.
    for (let i = 0; i < 6; i += 1) {
      await postJson(`${env.devnode.url}/_devnode/advance`, { blocks: 1 + i });
      await new Promise((r) => setTimeout(r, 1000));
    }
    const h = await waitFor('6 points of history', async () => {
      const r = await api('/theblock/history?series=block_height');
      const known = r.status === 200 ? r.body.series.block_height.filter((p) => p[1] !== null) : [];
      return known.length >= 6 ? known : null;
    }, { timeoutMs: 20000 });
    env.beforeRestart = h.length;

    // The restart: the page opens only afterwards.
    await stopProcess(env.agent.child);
    env.agent = await startAgent(BIN, env.devnode.url, env.home, { configYaml: env.yaml });

    env.context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      viewport: DESKTOP,
      locale: 'en-US',
      timezoneId: 'UTC',
      colorScheme: 'light',
      timeout: 30000,
    });
    env.page = env.context.pages()[0] || await env.context.newPage();
    env.page.setDefaultTimeout(10000);
    env.page.on('pageerror', (e) => env.console.push(`pageerror: ${e.message}`));
    env.page.on('request', (r) => {
      if (r.url().includes('/theblock/history')) env.historyRequests.push(new URL(r.url()).searchParams);
    });
    env.page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') env.console.push(`${m.type()}: ${m.text()}`);
    });
  });

  after(async () => {
    if (env.context) await env.context.close().catch(() => {});
    await stopProcess(env.agent && env.agent.child);
    await stopProcess(env.devnode && env.devnode.child);
    for (const d of env.dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('draws the charts from the agent\'s history at first paint after an agent restart', async () => {
    const opened = Date.now();
    await env.page.goto(`${env.agent.web}/#/theblock`, { waitUntil: 'load', timeout: 15000 });
    const points = await waitFor('the block height chart', async () => {
      const n = await env.page.getAttribute('[data-tile=block_height] .chart', 'data-points', { timeout: 200 }).catch(() => null);
      return n !== null && Number(n) > 0 ? Number(n) : null;
    }, { timeoutMs: 5000, intervalMs: 50 });
    const seconds = (Date.now() - opened) / 1000;
    // Taken before the restart: the agent samples once a second, so more points than seconds
    // since the restart can only come from its file.
    assert.ok(points >= env.beforeRestart, `the chart has ${points} points at first paint, ${env.beforeRestart} were recorded before the restart (${seconds.toFixed(1)} s after opening)`);
    for (const tile of ['block_height', 'peer_count', 'active_connections', 'bandwidth_in', 'last_block_age_seconds']) {
      assert.ok(await env.page.isVisible(`[data-tile=${tile}] .chart`), `${tile} has a chart`);
    }
    // Axes: the y range and the times at both ends, with the time zone.
    const axis = await text('.strength-spark .chart-x');
    assert.match(axis, /\d{2}:\d{2}:\d{2}.*UTC/, `x axis "${axis}"`);
    assert.match(await text('.strength-spark .chart-y'), /\d/);
    assert.equal(await env.page.getAttribute('.window-picker [data-window="3600"]', 'aria-pressed'), 'true');
    assert.match(await text('.window-picker [data-window=all]'), /All \(1 h\)/);
    // It asked for the charted series over the window shown, not every series of the agent.
    const first = env.historyRequests[0];
    assert.equal(first.get('window'), '3600');
    assert.ok(first.get('series').split(',').includes('block_height'), first.toString());
    assert.ok(!first.get('series').includes('compute.status'), first.toString());
    // Each market card charts its first figure from the history too.
    assert.ok(first.get('series').split(',').includes('compute.active_jobs'), first.toString());
    await waitFor('the compute card\'s chart', async () => Number(await env.page.getAttribute('[data-market=compute] .chart', 'data-points', { timeout: 500 }).catch(() => 0)) >= env.beforeRestart, { timeoutMs: 5000 });
  });

  it('shows a value and its time when hovering a chart', async () => {
    // The charts are redrawn as data comes: take the box of the one there now.
    const box = await waitFor('the chart\'s box', () => env.page.locator('[data-tile=block_height] .chart-area').boundingBox());
    await env.page.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
    const readout = await waitFor('the hover readout', async () => {
      const t = await env.page.textContent('[data-tile=block_height] .chart-readout', { timeout: 500 });
      const visible = await env.page.isVisible('[data-tile=block_height] .chart-readout');
      return visible && t ? t : null;
    }, { timeoutMs: 5000 });
    const { body } = await api('/theblock/network/metrics');
    assert.match(readout, /^[\d,]+ · .*\d{2}:\d{2}:\d{2} UTC$/, `readout "${readout}"`);
    assert.ok(Math.abs(Number(readout.split(' · ')[0].replace(/,/g, '')) - body.block_height) <= 21,
      `hover value ${readout} near the height ${body.block_height}`);
    await env.page.mouse.move(0, 0);
    // The window picker redraws the charts over 15 minutes.
    await env.page.click('.window-picker [data-window="900"]');
    assert.equal(await env.page.getAttribute('.window-picker [data-window="900"]', 'aria-pressed'), 'true');
  });

  it('counts the agent\'s uptime up, from every health message', async () => {
    const first = shownSeconds(await text('[data-field=uptime_seconds]'));
    const health = (await api('/health')).body;
    assert.ok(Math.abs(first - health.uptime_seconds) <= 3, `page ${first} s vs /health ${health.uptime_seconds} s`);
    await waitFor('the uptime to grow', async () => shownSeconds(await text('[data-field=uptime_seconds]')) >= first + 2, { timeoutMs: 8000 });
    // A second page gets the health snapshot of the stream: the uptime of now, not of the
    // agent's start (the "Uptime 0 s" of issue 18).
    const other = await env.context.newPage();
    await other.goto(`${env.agent.web}/#/theblock`, { waitUntil: 'load' });
    const uptime = await waitFor('uptime on a second page', async () => {
      const t = await other.textContent('[data-field=uptime_seconds]', { timeout: 500 }).catch(() => null);
      return t && /\d/.test(t) ? shownSeconds(t) : null;
    });
    const now = (await api('/health')).body.uptime_seconds;
    assert.ok(uptime >= now - 2, `second page shows ${uptime} s, the agent is up ${now} s`);
    await other.close();
  });

  it('shows the hello plugin in the Plugins panel, and Open in Grafana', async () => {
    await waitFor('the hello section', async () => env.page.isVisible('[data-plugin-section="hello/hello"]'), { timeoutMs: 15000 });
    assert.match(await text('[data-plugin-section="hello/hello"] [data-field=greeting]'), /hello/);
    assert.match(await text('[data-plugin-section="hello/hello"] .freshness'), /updated|stale/);
    // Its gauge marked for history (historyGauge, ABI 1.1) is in the agent's history.
    const marked = await waitFor('hello.hello_chain_height in the history', async () => {
      const r = await api('/theblock/history?series=hello.hello_chain_height');
      const pts = r.status === 200 ? r.body.series['hello.hello_chain_height'].filter((p) => p[1] !== null) : [];
      return pts.length ? pts : null;
    }, { timeoutMs: 15000 });
    const height = (await api('/theblock/network/metrics')).body.block_height;
    assert.ok(Math.abs(marked[marked.length - 1][1] - height) <= 25, `${JSON.stringify(marked.slice(-1))} vs height ${height}`);
    assert.equal(await env.page.isVisible('#grafana-link'), true);
    assert.equal(await env.page.getAttribute('#grafana-link', 'href'), 'http://127.0.0.1:9/d/blockbuster');
  });

  it('sorts the peers, names the markets as the cards do, shows 10 operations first', async () => {
    await env.page.click('#tab-peers');
    await waitFor('the peers table', async () => env.page.isVisible('#peers table'));
    await env.page.click('#peers th[data-col=latency_ms] button');
    assert.equal(await env.page.getAttribute('#peers th[data-col=latency_ms]', 'aria-sort'), 'ascending');
    const latencies = async () => env.page.$$eval('#peers tbody td[data-col=latency_ms]', (els) => els.map((e) => e.textContent.trim()));
    const asc = await latencies();
    await env.page.click('#peers th[data-col=latency_ms] button');
    assert.equal(await env.page.getAttribute('#peers th[data-col=latency_ms]', 'aria-sort'), 'descending');
    const desc = await latencies();
    assert.deepEqual(desc, [...asc].reverse(), 'descending is ascending reversed');
    const { body } = await api('/theblock/peers/list');
    const sorted = body.peers.map((p) => p.latency_ms).filter((v) => typeof v === 'number').sort((a, b) => a - b);
    assert.equal(asc.length, body.peers.length);
    assert.ok(sorted.length < 2 || sorted[0] <= sorted[sorted.length - 1]);
    // Absolute time, with the time zone, on hover of a relative one.
    const title = await env.page.getAttribute('#peers tbody td[data-col=connected_at] time', 'title').catch(() => null);
    if (title) assert.match(title, /UTC/, `connected_at title "${title}"`);

    await env.page.click('#tab-recent-operations');
    const options = await env.page.$$eval('#ops-market option', (els) => els.map((e) => e.textContent));
    assert.deepEqual(options, ['All markets', 'Compute', 'Storage', 'Energy', 'Ads']);
    const cards = await env.page.$$eval('.market-card h3', (els) => els.map((e) => e.textContent));
    for (const o of options.slice(1)) assert.ok(cards.includes(o), `market "${o}" is named so on a card too: ${cards}`);
    const rows = await env.page.$$eval('#recent-operations tbody tr', (els) => els.length);
    assert.ok(rows <= 10, `${rows} operations on the first screen`);
  });

  it('keeps text at 4.5:1 contrast or more in both themes', async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const report = {};
    for (const theme of ['light', 'dark']) {
      await env.page.evaluate((t) => {
        document.documentElement.dataset.theme = t;
      }, theme);
      for (const tab of ['recent-operations', 'peers']) {
        await env.page.click(`#tab-${tab}`);
        const { failures, min } = await env.page.evaluate(contrastFailures);
        report[`${theme}/${tab}`] = { min: Number(min.toFixed(2)), failures };
        assert.deepEqual(failures, [], `${theme} theme, ${tab} tab: text under 4.5:1`);
      }
    }
    fs.writeFileSync(path.join(ARTIFACTS, 'contrast.json'), `${JSON.stringify(report, null, 2)}\n`);
    await env.page.evaluate(() => {
      delete document.documentElement.dataset.theme;
    });
  });

  it('turns the last-block tile amber then red when the node stops producing blocks', async () => {
    await postJson(`${env.devnode.url}/_devnode/advance`, { blocks: 1 });
    await waitFor('a fresh last block', async () => (await env.page.getAttribute('[data-tile=last_block_age_seconds]', 'data-level')) === 'ok', { timeoutMs: 10000 });
    await waitFor('amber', async () => (await env.page.getAttribute('[data-tile=last_block_age_seconds]', 'data-level')) === 'warn', { timeoutMs: 10000 });
    await waitFor('red', async () => (await env.page.getAttribute('[data-tile=last_block_age_seconds]', 'data-level')) === 'critical', { timeoutMs: 10000 });
    assert.match(await text('[data-tile=last_block_age_seconds]'), /stalled\?/);
    const metrics = (await api('/theblock/network/metrics')).body;
    assert.ok(metrics.last_block_age_seconds >= 3, `the agent says ${metrics.last_block_age_seconds} s too`);
    const scrape = await fetch(`${env.agent.api}/metrics`).then((r) => r.text());
    assert.match(scrape, /^theblock_last_block_age_seconds \d/m);
  });

  it('saves a desktop and a phone screenshot; the first screen is short; wide tables say they scroll', async () => {
    await env.page.click('#tab-recent-operations');
    await env.page.mouse.move(0, 0);
    const desktopHeight = await env.page.evaluate(() => document.documentElement.scrollHeight);
    await shot('history-desktop.png');
    await env.page.setViewportSize(PHONE);
    await env.page.click('#tab-peers');
    await waitFor('the scroll hint over the peers table', async () => env.page.isVisible('#peers .scroll-hint'), { timeoutMs: 5000 });
    const phoneHeight = await env.page.evaluate(() => document.documentElement.scrollHeight);
    await shot('history-phone.png');
    fs.writeFileSync(path.join(ARTIFACTS, 'page-height.json'), `${JSON.stringify({ desktopHeight, phoneHeight })}\n`);
    assert.ok(desktopHeight < 3000, `desktop page ${desktopHeight} px (4 400 before issue 18)`);
    await env.page.setViewportSize(DESKTOP);
  });

  it('shows stale in the tab title when the node stops', async () => {
    assert.equal(await env.page.title(), 'Block Buster · The Block');
    await stopProcess(env.devnode.child);
    await waitFor('the title to say stale', async () => (await env.page.title()).startsWith('⚠ Stale'), { timeoutMs: 20000 });
    await shot('history-stale.png', false);
  });

  it('printed no console error or warning', () => {
    assert.deepEqual(env.console, []);
  });
});

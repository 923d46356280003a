// The dashboard against an agent that serves TLS (docs/security.md, "TLS"). A page loaded over
// HTTPS reads the API over https:// and the stream over wss://; a page loaded over plain HTTP
// uses wss:// as well when /bb-config.json says the WebSocket port speaks TLS (`ws_tls`); a page
// loaded over HTTPS from an agent whose WebSocket port is plain polls and says why (a browser
// may not open ws:// from an HTTPS page). The certificate is self-signed, made here by openssl;
// Chromium is told to accept it. Runs after dashboard.test.mjs's prerequisites check.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  startAgent, startDevnode, stopProcess, tempDir, waitFor,
} from './lib/processes.mjs';

const CHROMIUM = process.env.BB_CHROMIUM || '/usr/bin/chromium';
const BIN = process.env.BB_BIN_DIR;
const READY = BIN && fs.existsSync(CHROMIUM) && fs.existsSync(path.join(BIN, 'blockbuster-agent'));

describe('web dashboard over TLS', {
  timeout: 120000,
  skip: READY ? false : 'prerequisites missing: see dashboard.test.mjs',
}, () => {
  const env = { dirs: [], devnode: null, agents: [], context: null, tls: '' };

  before(async () => {
    const { chromium } = await import('playwright-core');
    const certs = tempDir('bb-tls-certs-');
    const profile = tempDir('bb-tls-profile-');
    env.dirs.push(certs, profile);
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-keyout', path.join(certs, 'key.pem'),
      '-out', path.join(certs, 'cert.pem')], { encoding: 'utf8', timeout: 30000 });
    assert.equal(made.status, 0, `openssl req failed (apt-get install openssl): ${made.stderr}`);
    env.tls = `{cert_file: "${path.join(certs, 'cert.pem')}", key_file: "${path.join(certs, 'key.pem')}"}`;
    env.devnode = await startDevnode(BIN, { extraArgs: ['--block-ms', '500'] });
    env.context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      ignoreHTTPSErrors: true,  // the self-signed certificate, for https:// and wss:// alike
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    if (env.context) await env.context.close().catch(() => {});
    for (const a of env.agents) await stopProcess(a.child);
    if (env.devnode) await stopProcess(env.devnode.child);
    for (const d of env.dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  // An agent with `sections` (e.g. ['http', 'web', 'ws']) serving TLS; {api, web, wsPort} with
  // the schemes the agent really speaks.
  async function agentWithTls(sections) {
    const home = tempDir('bb-tls-home-');
    env.dirs.push(home);
    const yaml = sections.map((s) => `${s}:\n  tls: ${env.tls}\n`).join('');
    const agent = await startAgent(BIN, env.devnode.url, home, { configYaml: yaml });
    env.agents.push(agent);
    const ws = agent.output().match(/ ws=127\.0\.0\.1:(\d+)/);
    assert.ok(ws, `no ws= port in the agent's ready line:\n${agent.output()}`);
    const secure = (s, url) => (sections.includes(s) ? url.replace(/^http:/, 'https:') : url);
    return { api: secure('http', agent.api), web: secure('web', agent.web), wsPort: Number(ws[1]) };
  }

  // Opens `url` in a new tab that records its WebSocket connections ({url, frames}).
  async function openPage(url) {
    const page = await env.context.newPage();
    const sockets = [];
    page.on('websocket', (ws) => {
      const s = { url: ws.url(), frames: 0 };
      sockets.push(s);
      ws.on('framereceived', () => { s.frames += 1; });
    });
    await page.goto(url, { waitUntil: 'load', timeout: 15000 });
    return { page, sockets };
  }

  const showsHeight = async (page) => {
    const t = (await page.textContent('[data-field=block_height]', { timeout: 5000 })) || '';
    return /\d/.test(t);
  };

  // The page shows live data, and its stream is the agent's wss:// port and nothing plain.
  const expectLiveOverWss = async (agent) => {
    const { page, sockets } = await openPage(`${agent.web}/#/theblock`);
    await waitFor('the page to show a block height', () => showsHeight(page), { timeoutMs: 20000 });
    const wss = `wss://127.0.0.1:${agent.wsPort}/theblock/ws`;
    await waitFor(`messages on ${wss}`, async () => sockets.some((s) => s.url === wss && s.frames > 0),
      { timeoutMs: 20000 });
    assert.deepEqual(sockets.filter((s) => !s.url.startsWith('wss:')), [], 'no plain ws:// connection');
    await page.close();
  };

  it('a page over HTTPS reads the API over https:// and the stream over wss://', async () => {
    const agent = await agentWithTls(['http', 'web', 'ws']);
    assert.match(agent.web, /^https:/);
    await expectLiveOverWss(agent);
  });

  it('a page over plain HTTP uses wss:// when the WebSocket port speaks TLS', async () => {
    const agent = await agentWithTls(['ws']);
    assert.match(agent.web, /^http:/);
    await expectLiveOverWss(agent);
  });

  it('a page over HTTPS whose WebSocket port is plain polls and says why', async () => {
    const agent = await agentWithTls(['http', 'web']);
    const { page, sockets } = await openPage(`${agent.web}/#/theblock`);
    await waitFor('the page to show a block height (polling over https://)', () => showsHeight(page),
      { timeoutMs: 20000 });
    const banners = await page.$$eval('.banner-warn', (els) => els.map((e) => e.textContent));
    assert.ok(banners.some((b) => b.includes('ws.tls')), `no banner naming ws.tls: ${JSON.stringify(banners)}`);
    assert.deepEqual(sockets, [], 'the page tried a WebSocket that the browser would block');
    await page.close();
  });
});

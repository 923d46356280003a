// The dashboard against an agent whose API requires a bearer token (docs/security.md): the page
// takes ?token= once, keeps it for the tab, takes it out of the address bar, and uses it for the
// REST calls and the WebSocket stream. Runs after dashboard.test.mjs's prerequisites check.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  getJson, startAgent, startDevnode, stopProcess, tempDir, waitFor,
} from './lib/processes.mjs';

const CHROMIUM = process.env.BB_CHROMIUM || '/usr/bin/chromium';
const BIN = process.env.BB_BIN_DIR;
const READY = BIN && fs.existsSync(CHROMIUM) && fs.existsSync(path.join(BIN, 'blockbuster-agent'));
const TOKEN = 'browser-test-token-7f3a9c';

describe('web dashboard with API authentication', {
  timeout: 90000,
  skip: READY ? false : 'prerequisites missing: see dashboard.test.mjs',
}, () => {
  const env = { dirs: [], devnode: null, agent: null, context: null, wsFrames: 0 };

  before(async () => {
    const { chromium } = await import('playwright-core');
    const home = tempDir('bb-auth-home-');
    const profile = tempDir('bb-auth-profile-');
    env.dirs.push(home, profile);
    const hash = crypto.createHash('sha256').update(TOKEN).digest('hex');
    env.devnode = await startDevnode(BIN, { extraArgs: ['--block-ms', '500'] });
    env.agent = await startAgent(BIN, env.devnode.url, home, {
      configYaml: `auth:\n  api:\n    bearer_sha256: ["sha256:${hash}"]\n  ws:\n    bearer_sha256: ["sha256:${hash}"]\n`,
    });
    env.context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    env.page = env.context.pages()[0] || await env.context.newPage();
    env.page.on('websocket', (ws) => ws.on('framereceived', () => { env.wsFrames += 1; }));
  });

  after(async () => {
    if (env.context) await env.context.close();
    for (const p of [env.agent, env.devnode]) if (p) await stopProcess(p.child);
    for (const d of env.dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('the API refuses a request without the token', async () => {
    const r = await getJson(`${env.agent.api}/theblock/network/metrics`);
    assert.equal(r.status, 401);
  });

  it('the page given ?token= shows live data, over the stream too, and hides the token', async () => {
    await env.page.goto(`${env.agent.web}/?token=${TOKEN}#/theblock`, { waitUntil: 'load' });
    await waitFor('the page to show a block height', async () => {
      const t = (await env.page.textContent('[data-field=block_height]', { timeout: 5000 })) || '';
      return /\d/.test(t);
    }, { timeoutMs: 20000 });
    assert.ok(!env.page.url().includes(TOKEN), `the token is still in the address bar: ${env.page.url()}`);
    await waitFor('a message on the authenticated WebSocket stream', async () => env.wsFrames > 0,
      { timeoutMs: 15000 });
    const html = await env.page.content();
    assert.ok(!html.includes(TOKEN), 'the token appears in the page');
  });
});

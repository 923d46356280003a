// Runs the real bb-devnode and blockbuster-agent on loopback with free ports, for the browser
// tests. Every wait is bounded; every process started here is stopped by the test's cleanup.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs` naming `what`. */
export async function waitFor(what, fn, { timeoutMs = 10000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const detail = lastError ? `; last error: ${lastError.message}` : `; last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A temporary directory removed by `cleanup()`. */
export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Starts `bin` with `args`/`env` and waits (at most `timeoutMs`) for a stdout line matching
 * `ready`. Resolves {child, match, output()}; rejects with the process's output when it exits
 * first or the time runs out.
 */
export function startProcess(bin, args, { env = process.env, ready, timeoutMs = 20000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    if (!fs.existsSync(bin)) {
      reject(new Error(`${bin} does not exist: build it first (see docs/dashboard.md)`));
      return;
    }
    const child = spawn(bin, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let done = false;
    const output = () => `--- stdout of ${path.basename(bin)}\n${out}\n--- stderr\n${err.slice(-4000)}`;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(bin)} printed no ready line within ${timeoutMs} ms\n${output()}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(ready);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolve({ child, match: m, output });
      }
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
      if (err.length > 1 << 20) err = err.slice(-(1 << 19));
    });
    child.on('exit', (code, signal) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${path.basename(bin)} exited (code ${code}, signal ${signal}) before it was ready\n${output()}`));
    });
    child.on('error', (e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export function stopProcess(child, { signal = 'SIGTERM', graceMs = 5000 } = {}) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** Starts bb-devnode (spec profile). `port` 0 picks a free one. */
export async function startDevnode(binDir, { port = 0, extraArgs = [] } = {}) {
  const p = await startProcess(path.join(binDir, 'bb-devnode'),
    ['--listen', `127.0.0.1:${port}`, '--profile', 'spec', ...extraArgs],
    { ready: /bb-devnode ready rpc=127\.0\.0\.1:(\d+) profile=spec/ });
  return { ...p, port: Number(p.match[1]), url: `http://127.0.0.1:${p.match[1]}` };
}

/**
 * Starts blockbuster-agent against `rpcUrl`, every listener on a free loopback port. `configYaml`
 * (optional) is written to <home>/agent.yaml and passed with --config.
 */
export async function startAgent(binDir, rpcUrl, home, { configYaml } = {}) {
  const env = {
    ...process.env,
    HOME: home,
    BLOCK_BUSTER_HTTP_HOST: '127.0.0.1',
    BLOCK_BUSTER_HTTP_PORT: '0',
    BLOCK_BUSTER_WEB_HOST: '127.0.0.1',
    BLOCK_BUSTER_WEB_PORT: '0',
    BLOCK_BUSTER_WS_HOST: '127.0.0.1',
    BLOCK_BUSTER_WS_PORT: '0',
    BLOCK_BUSTER_FEATURE_WS_PORT: '0',
    THEBLOCK_RPC_URL: rpcUrl,
  };
  const args = [];
  if (configYaml) {
    fs.writeFileSync(path.join(home, 'agent.yaml'), configYaml);
    args.push('--config', path.join(home, 'agent.yaml'));
  }
  for (const k of ['THEBLOCK_AUTH_TOKEN', 'THEBLOCK_WS_URL', 'BLOCK_BUSTER_LOG_LEVEL']) delete env[k];
  const p = await startProcess(path.join(binDir, 'blockbuster-agent'), args,
    { env, cwd: home, ready: /blockbuster-agent ready http=127\.0\.0\.1:(\d+) web=127\.0\.0\.1:(\d+)/ });
  return {
    ...p,
    api: `http://127.0.0.1:${p.match[1]}`,
    web: `http://127.0.0.1:${p.match[2]}`,
  };
}

/** GET `url` -> {status, body} (body parsed as JSON when it is JSON); bounded by `timeoutMs`. */
export async function getJson(url, timeoutMs = 5000) {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: r.status, body };
}

/** POST JSON to `url` -> {status, body}. */
export async function postJson(url, payload, timeoutMs = 5000) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: r.status, body };
}

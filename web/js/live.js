// Keeps the page's copy of the agent's data fresh: the WebSocket stream when the agent serves
// one, else (and whenever the stream drops or goes quiet) polling every refresh_ms.
//
// Polling reads GET /theblock/dashboard: every section in one body that always answers 200, so
// a section without data (503 on its own endpoint) does not print a network error in the
// console every two seconds. An agent without that endpoint (404) is read section by section.

import { isNum } from './format.js';
import { AgentHistory } from './history.js';

export const SECTIONS = [
  'network_metrics',
  'peers',
  'markets_health',
  'operations',
  'receipts',
  'health',
];

const SECTION_PATHS = {
  network_metrics: '/theblock/network/metrics',
  peers: '/theblock/peers/list',
  markets_health: '/theblock/markets/health',
  operations: '/theblock/operations',
  receipts: '/theblock/receipts?limit=20',
  health: '/health',
};

/** Rows per receipts page; the dashboard body carries the first page of this size. */
export const RECEIPTS_PAGE_SIZE = 20;

/**
 * GET `url` as JSON within `timeoutMs`. Never throws. Returns
 *   {reached: false, error} when the agent did not answer (refused, reset, timed out), or
 *   {reached: true, status, body, error} where body is the parsed JSON or null.
 */
let apiToken = null;
/** Sets the bearer token sent with every API request (null: none). */
export function setApiToken(token) {
  apiToken = token || null;
}

export async function getJson(url, timeoutMs, signal) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const onOuterAbort = () => controller.abort();
  if (signal) signal.addEventListener('abort', onOuterAbort, { once: true });
  try {
    const r = await fetch(url, {
      signal: controller.signal,
      cache: 'no-store',
      headers: apiToken
        ? { Accept: 'application/json', Authorization: `Bearer ${apiToken}` }
        : { Accept: 'application/json' },
    });
    let body = null;
    let error = null;
    try {
      body = await r.json();
    } catch {
      error = `the agent answered HTTP ${r.status} without JSON`;
    }
    return { reached: true, status: r.status, body, error };
  } catch (e) {
    const timedOut = controller.signal.aborted && !(signal && signal.aborted);
    return {
      reached: false,
      error: timedOut
        ? `no answer within ${(timeoutMs / 1000).toFixed(1)} s`
        : 'connection failed (agent down, or the address is wrong)',
    };
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onOuterAbort);
  }
}

/** An error body {"error": {"code", "message"}} -> {code, message}; anything else -> null. */
export function errorOf(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return null;
  const e = body.error;
  if (!e || typeof e !== 'object') return null;
  return {
    code: typeof e.code === 'string' ? e.code : 'error',
    message: typeof e.message === 'string' ? e.message : JSON.stringify(e),
  };
}

/**
 * One section as the page keeps it: {body, error, receivedMs, via}. `body` is the data body
 * (null when the section has none); `error` {code, message} says why there is none.
 */
function sectionFrom(value, receivedMs, via, missingMessage) {
  if (value === null || value === undefined || typeof value !== 'object') {
    return { body: null, error: { code: 'missing', message: missingMessage }, receivedMs, via };
  }
  const err = errorOf(value);
  if (err) return { body: null, error: err, receivedMs, via };
  return { body: value, error: null, receivedMs, via };
}

export class LiveClient {
  /**
   * @param config from loadConfig()
   * @param onChange called (with this client) after every change of data or connection
   */
  constructor(config, onChange) {
    this.config = config;
    this.onChange = onChange;
    /** name -> {body, error, receivedMs, via} */
    this.sections = {};
    /** null: no answer yet; true: the last request was answered; false: it was not. */
    this.answering = null;
    this.lastAnswerMs = null;
    this.lastFailure = null;
    this.failures = 0;
    this.useDashboard = true;
    this.receiptsQuery = { market: '', offset: 0 };
    /** {query, section} for a receipts query other than the first unfiltered page. */
    this.receiptsView = null;
    this.polls = 0;

    this.ws = null;
    this.wsLive = false;
    this.wsLastMessageMs = 0;
    this.wsAttempts = 0;
    this.wsTimer = null;

    this.stopped = false;
    this.wake = null;
    this.inflight = null;

    /** The charts' data: the agent's history, then the points it pushes. */
    this.history = new AgentHistory();
    this.history.windowS = config.historyWindowS;
    this.historyLoading = null;
    /** The series the charts draw (set by the network panel); empty = every series. */
    this.historySeries = [];
    /** Seconds of history the charts want; more than loaded triggers a full read. */
    this.historyWantS = 3600;
    this.historyLoadedS = 0;
  }

  /** The charts want `seconds` of history (the window picker): read what is not held yet. */
  setHistoryWindow(seconds) {
    this.historyWantS = seconds;
    if (this.history.source === 'agent' && this.wantedSeconds() > this.historyLoadedS) this.loadHistory();
  }

  wantedSeconds() {
    const max = this.history.windowS;
    return isNum(max) ? Math.min(this.historyWantS, max) : this.historyWantS;
  }

  /**
   * Reads the history the page misses: the charted series over the window the charts show at
   * first (and when the picker asks for more), then from the last point held (after a poll, a
   * reconnection or a gap). 404: an agent without history; the page keeps its own memory of the
   * network bodies instead.
   */
  loadHistory(signal) {
    if (this.history.source === 'page') return Promise.resolve();
    if (this.historyLoading) return this.historyLoading;
    const h = this.history;
    const params = new URLSearchParams();
    if (this.historySeries.length) params.set('series', this.historySeries.join(','));
    const full = h.source !== 'agent' || h.lastT === null || this.wantedSeconds() > this.historyLoadedS;
    let wantS = null;
    if (!full) {
      const missing = Math.ceil((Date.now() - h.lastT) / 1000) + (h.resolutionS || 2);
      params.set('window', String(Math.max(1, Math.min(missing, h.windowS || missing))));
    } else if (isNum(h.windowS)) {
      wantS = this.wantedSeconds();
      params.set('window', String(wantS));
    }
    const query = `?${params}`;
    this.historyLoading = getJson(`${this.config.apiBase}/theblock/history${query}`, 10000, signal).then((r) => {
      if (!r.reached) return;
      if (r.status === 404) {
        h.source = 'page';
        return;
      }
      if (r.status !== 200 || !r.body) return;
      if (h.source !== 'agent') {
        h.source = 'agent';
        if (!isNum(h.windowS) && isNum(r.body.window)) h.windowS = r.body.window;
      }
      if (full) {
        h.replace(r.body);
        this.historyLoadedS = wantS ?? (isNum(r.body.window) ? r.body.window : 0);
        this.emit();
      } else if (h.merge(r.body)) {
        this.emit();
      }
    }).finally(() => {
      this.historyLoading = null;
    });
    return this.historyLoading;
  }

  start() {
    this.loadHistory();
    this.loop();
    this.connectStream();
  }

  stop() {
    this.stopped = true;
    if (this.inflight) this.inflight.abort();
    if (this.wsTimer) clearTimeout(this.wsTimer);
    if (this.ws) this.ws.close();
    this.refreshNow();
  }

  /** Ends the current wait so the next poll runs at once (filter changed, tab visible again). */
  refreshNow() {
    if (this.wake) this.wake();
  }

  get transport() {
    return this.wsLive ? 'stream' : 'polling';
  }

  /** Sets the receipts page/filter to read; fetches it at once. */
  setReceiptsQuery(query) {
    this.receiptsQuery = { market: query.market || '', offset: Math.max(0, query.offset || 0) };
    this.refreshNow();
  }

  isDefaultReceiptsQuery(q = this.receiptsQuery) {
    return !q.market && q.offset === 0;
  }

  /** The receipts section for the current query (null while it is being fetched). */
  currentReceipts() {
    if (this.isDefaultReceiptsQuery()) return this.sections.receipts || null;
    const v = this.receiptsView;
    if (v && v.query.market === this.receiptsQuery.market && v.query.offset === this.receiptsQuery.offset)
      return v.section;
    return null;
  }

  /** True while the agent's receipts endpoint is known to exist. */
  receiptsServed() {
    const r = this.sections.receipts;
    return !!(r && r.body && Array.isArray(r.body.receipts));
  }

  /** Page-only history: a point per network body, when the agent keeps none. */
  noteSection(name) {
    const sec = this.sections[name];
    if (name === 'network_metrics' && this.history.source === 'page' && sec && sec.body) this.history.addBody(sec.body);
  }

  emit() {
    try {
      this.onChange(this);
    } catch (e) {
      // A rendering bug must not stop the updates; it is still reported once per change.
      console.error('Block Buster: rendering failed', e);
    }
  }

  async loop() {
    while (!this.stopped) {
      const started = Date.now();
      await this.tick();
      if (this.stopped) break;
      const delay = Math.max(this.nextDelay() - (Date.now() - started), 100);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  nextDelay() {
    // While the agent does not answer, back off a little (2, 4, then every 8 s at most) so an
    // all-day page does not hammer a stopped agent, yet notices its return quickly.
    if (this.answering === false && !this.wsLive) {
      const factor = Math.min(2 ** Math.max(this.failures - 1, 0), 4);
      return Math.min(this.config.refreshMs * factor, Math.max(8000, this.config.refreshMs));
    }
    return this.config.refreshMs;
  }

  async tick() {
    this.checkStreamQuiet();
    const controller = new AbortController();
    this.inflight = controller;
    const timeout = this.config.refreshMs;
    const jobs = [];
    if (!this.wsLive) jobs.push(this.pollSections(timeout, controller.signal));
    if (!this.wsLive || this.history.source === 'none') jobs.push(this.loadHistory(controller.signal));
    if (!this.isDefaultReceiptsQuery() && this.receiptsServed())
      jobs.push(this.pollReceiptsView(timeout, controller.signal));
    await Promise.all(jobs);
    this.inflight = null;
    this.polls += 1;
    this.emit();
  }

  markAnswered() {
    this.answering = true;
    this.lastAnswerMs = Date.now();
    this.lastFailure = null;
    this.failures = 0;
  }

  markFailed(error) {
    this.answering = false;
    this.lastFailure = error;
    this.failures += 1;
  }

  async pollSections(timeout, signal) {
    const base = this.config.apiBase;
    if (this.useDashboard) {
      const r = await getJson(`${base}/theblock/dashboard`, timeout, signal);
      if (!r.reached) return this.markFailed(r.error);
      if (r.status === 404) {
        // An agent (or another server) without the combined endpoint: read each section.
        this.useDashboard = false;
      } else if (r.status !== 200 || !r.body || typeof r.body !== 'object') {
        const err = errorOf(r.body);
        return this.markFailed(
          err ? `${err.message} (HTTP ${r.status})` : r.error || `HTTP ${r.status} from the agent`);
      } else {
        this.markAnswered();
        const now = Date.now();
        for (const name of SECTIONS) {
          this.sections[name] = sectionFrom(r.body[name], now, 'poll',
            `the agent's dashboard body has no ${name} section`);
          this.noteSection(name);
        }
        return undefined;
      }
    }
    const results = await Promise.all(
      SECTIONS.map((name) => getJson(`${base}${SECTION_PATHS[name]}`, timeout, signal)));
    if (results.every((r) => !r.reached)) return this.markFailed(results[0].error);
    this.markAnswered();
    const now = Date.now();
    SECTIONS.forEach((name, i) => {
      const r = results[i];
      if (!r.reached) return;  // keep what we had; the next poll tries again
      const missing = r.status === 404
        ? `the agent does not serve ${SECTION_PATHS[name].split('?')[0]} (HTTP 404)`
        : r.error || `HTTP ${r.status}`;
      this.sections[name] = sectionFrom(r.status === 404 && !errorOf(r.body) ? null : r.body, now,
        'poll', missing);
      this.noteSection(name);
    });
    return undefined;
  }

  async pollReceiptsView(timeout, signal) {
    const q = { ...this.receiptsQuery };
    const params = new URLSearchParams({ limit: String(RECEIPTS_PAGE_SIZE), offset: String(q.offset) });
    if (q.market) params.set('market', q.market);
    const r = await getJson(`${this.config.apiBase}/theblock/receipts?${params}`, timeout, signal);
    if (!r.reached) return;
    const section = sectionFrom(r.body, Date.now(), 'poll', r.error || `HTTP ${r.status}`);
    if (r.status !== 200 && !section.error)
      section.error = { code: `http_${r.status}`, message: `HTTP ${r.status} from the agent` };
    if (section.error) section.body = null;
    this.receiptsView = { query: q, section };
  }

  // ---- WebSocket stream ------------------------------------------------------------------

  connectStream() {
    if (!this.config.wsUrl || this.stopped) return;
    let ws;
    try {
      // Browsers cannot set headers on a WebSocket: the token rides in the subprotocol list,
      // which the agent accepts (and answers with "blockbuster" only).
      ws = this.config.token
        ? new WebSocket(this.config.wsUrl, ['blockbuster', `bearer.${this.config.token}`])
        : new WebSocket(this.config.wsUrl);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener('message', (ev) => this.onStreamMessage(ev));
    ws.addEventListener('close', () => {
      if (this.ws !== ws) return;
      const wasLive = this.wsLive;
      this.ws = null;
      this.wsLive = false;
      this.scheduleReconnect();
      if (wasLive) {
        this.emit();
        this.refreshNow();  // polling takes over at once
      }
    });
    // 'error' is always followed by 'close', which does the work.
    ws.addEventListener('error', () => {});
  }

  scheduleReconnect() {
    if (this.stopped || !this.config.wsUrl) return;
    // Exponential backoff with jitter: 2 s, 4 s, 8 s ... 60 s.
    const base = Math.min(60000, 2000 * 2 ** Math.min(this.wsAttempts, 5));
    this.wsAttempts += 1;
    const delay = base * (0.8 + Math.random() * 0.4);
    if (this.wsTimer) clearTimeout(this.wsTimer);
    this.wsTimer = setTimeout(() => {
      this.wsTimer = null;
      this.connectStream();
    }, delay);
  }

  checkStreamQuiet() {
    // A stream that stays open but sends nothing is worse than none: give it up and poll.
    if (!this.wsLive || !this.ws) return;
    const quietMs = Date.now() - this.wsLastMessageMs;
    if (quietMs > Math.max(3 * this.config.refreshMs, 10000)) this.ws.close();
  }

  onStreamMessage(ev) {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;  // not ours; ignore
    }
    if (!msg || typeof msg !== 'object') return;
    this.wsLastMessageMs = Date.now();
    if (msg.type === 'welcome') {
      this.wsLive = true;
      this.wsAttempts = 0;
      this.markAnswered();
      // Every section, and the history points (sent only on request); then what was missed.
      const streams = msg.data && Array.isArray(msg.data.streams) ? msg.data.streams : [];
      if (streams.includes('history')) {
        for (const name of [...SECTIONS, 'history']) {
          try {
            this.ws.send(JSON.stringify({ type: 'subscribe', stream: name }));
          } catch {
            // closing: the close handler takes over
          }
        }
      }
      this.loadHistory();
      this.emit();
      return;
    }
    if (msg.type !== 'snapshot' && msg.type !== 'update') return;
    if (msg.stream === 'history') {
      this.wsLive = true;
      this.markAnswered();
      if (this.history.source === 'agent' && this.history.merge(msg.data)) this.emit();
      return;
    }
    if (!SECTIONS.includes(msg.stream)) return;
    this.wsLive = true;
    this.markAnswered();
    this.sections[msg.stream] = sectionFrom(msg.data, Date.now(), 'stream',
      `the stream sent no data for ${msg.stream}`);
    this.noteSection(msg.stream);
    this.emit();
  }
}

// Where the API is. The agent serves /bb-config.json beside the page:
//   {"api_port", "ws_port", "feature_ws_port", "refresh_ms", "version"[, "ws_enabled", "ws_tls",
//    "history_window", "last_block_warn_seconds", "last_block_critical_seconds", "grafana_url"]}
// Without it (the page served by `python3 -m http.server`) the guide's ports apply, on the host
// the page came from. `?api=http://host:port` overrides the API base and `?ws=ws://host:port`
// the stream (`?ws=off` disables it). `?token=T` is the API token when the agent requires one
// (docs/security.md): kept in sessionStorage for this tab only and removed from the address bar.

export const DEFAULT_API_PORT = 5000;
export const DEFAULT_WS_PORT = 5001;
export const DEFAULT_REFRESH_MS = 2000;
export const WS_PATH = '/theblock/ws';

function portOf(v, fallback) {
  return Number.isInteger(v) && v > 0 && v < 65536 ? v : fallback;
}

function httpBase(text) {
  try {
    const u = new URL(text);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    return `${u.protocol}//${u.host}`;
  } catch {
    return null;
  }
}

function wsBase(text) {
  try {
    const u = new URL(text);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return null;
    return `${u.protocol}//${u.host}`;
  } catch {
    return null;
  }
}

const TOKEN_KEY = 'blockbuster.token';

// The API token, from ?token= (then stored for this tab and taken out of the address bar, so it
// is not bookmarked or shared by accident) or from an earlier visit in this tab.
function apiToken(loc, params) {
  const given = params.get('token');
  try {
    if (given) {
      sessionStorage.setItem(TOKEN_KEY, given);
      params.delete('token');
      const rest = params.toString();
      if (window.history && loc === window.location)
        window.history.replaceState(null, '', `${loc.pathname}${rest ? `?${rest}` : ''}${loc.hash}`);
      return given;
    }
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return given || null;  // storage disabled: use it for this page only
  }
}

async function fetchRuntimeConfig(timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const r = await fetch('bb-config.json', { cache: 'no-store', signal: controller.signal });
    if (!r.ok) return null;
    const body = await r.json();
    return body && typeof body === 'object' ? body : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves the runtime config: {apiBase, wsUrl (null: no stream), refreshMs, version, source,
 * token (null: none), warnings[]}. Never throws.
 */
export async function loadConfig(loc = window.location) {
  const params = new URLSearchParams(loc.search);
  const token = apiToken(loc, params);
  const file = await fetchRuntimeConfig(3000);
  const warnings = [];

  const refresh = file && Number.isInteger(file.refresh_ms) ? file.refresh_ms : DEFAULT_REFRESH_MS;
  const refreshMs = Math.min(Math.max(refresh, 500), 60000);
  const apiPort = portOf(file && file.api_port, DEFAULT_API_PORT);
  const wsPort = portOf(file && file.ws_port, DEFAULT_WS_PORT);
  const secure = loc.protocol === 'https:';

  let apiBase = `${loc.protocol}//${loc.hostname}:${apiPort}`;
  const apiParam = params.get('api');
  if (apiParam) {
    const base = httpBase(apiParam);
    if (base) apiBase = base;
    else warnings.push(`ignored ?api=${apiParam}: expected http://host:port`);
  }

  // The stream is tried only where it is known to be served: a failed WebSocket connection
  // prints an error in the browser console that no script can silence.
  const apiHost = new URL(apiBase).hostname;
  const wsHost = apiHost.includes(':') && !apiHost.startsWith('[') ? `[${apiHost}]` : apiHost;
  // wss:// when the agent says its WebSocket port speaks TLS (ws_tls, i.e. ws.tls is set), ws://
  // when it says it does not; an older agent says neither: the page's own scheme then. A page
  // loaded over HTTPS may not open ws:// (mixed content): it polls instead, and says why.
  const wsTls = file && typeof file.ws_tls === 'boolean' ? file.ws_tls : secure;
  const announced = Boolean(file && file.ws_enabled === true);
  const mixedContent = announced && secure && !wsTls;
  let wsUrl = announced && !mixedContent
    ? `${wsTls ? 'wss:' : 'ws:'}//${wsHost}:${wsPort}${WS_PATH}`
    : null;
  const wsParam = params.get('ws');
  if (wsParam === 'off' || wsParam === '0') {
    wsUrl = null;
  } else if (wsParam) {
    const base = wsBase(wsParam);
    if (base) wsUrl = `${base}${WS_PATH}`;
    else warnings.push(`ignored ?ws=${wsParam}: expected ws://host:port or off`);
  } else if (mixedContent) {
    warnings.push('no live stream: this page was loaded over HTTPS and the agent\'s WebSocket '
      + 'port speaks no TLS; set ws.tls in the agent\'s config (docs/security.md)');
  }

  const seconds = (v, fallback) => (Number.isInteger(v) && v > 0 ? v : fallback);
  const lastBlockWarnS = seconds(file && file.last_block_warn_seconds, 30);
  const lastBlockCriticalS = Math.max(seconds(file && file.last_block_critical_seconds, 120), lastBlockWarnS + 1);
  // Only an http(s) link: the value is the operator's, but the page never follows another scheme.
  const grafana = file && typeof file.grafana_url === 'string' ? httpBase(file.grafana_url) && file.grafana_url : null;

  return {
    apiBase,
    wsUrl,
    refreshMs,
    lastBlockWarnS,
    lastBlockCriticalS,
    historyWindowS: file && Number.isInteger(file.history_window) && file.history_window > 0 ? file.history_window : null,
    grafanaUrl: grafana || null,
    version: file && typeof file.version === 'string' ? file.version : null,
    source: file ? 'bb-config.json' : 'defaults',
    token,
    warnings,
  };
}

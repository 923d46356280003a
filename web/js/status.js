// The connection pill: what the page can honestly say about the data it shows.
//
//   disconnected  the agent itself does not answer (refused, reset, or no answer within
//                 refresh_ms), and no stream is open
//   stale         the agent answers, but the network data is old: the agent marks it stale
//                 (the node stopped answering and it serves its last data), the node is
//                 unreachable, or there is no network data at all
//   live          the agent answers and the network data is fresh
//
// Re-evaluated after every poll or stream message, and every second for the ages shown.

import { fmtAge, isNum } from './format.js';

/** Age in seconds of a section now: the body's age_seconds plus the time since we got it. */
export function sectionAge(section, nowMs = Date.now()) {
  if (!section || !section.body || !isNum(section.body.age_seconds)) return null;
  return section.body.age_seconds + Math.max(0, nowMs - section.receivedMs) / 1000;
}

/** -> {kind: connecting|live|stale|disconnected, label, detail, reason} */
export function connectionState(client, nowMs = Date.now()) {
  if (client.answering === null && !client.wsLive) {
    return { kind: 'connecting', label: 'connecting', detail: '', reason: 'waiting for the first answer of the agent' };
  }
  if (client.answering === false && !client.wsLive) {
    const since = client.lastAnswerMs ? `last answer ${fmtAge((nowMs - client.lastAnswerMs) / 1000)} ago` : 'never answered';
    return {
      kind: 'disconnected',
      label: 'disconnected',
      detail: since,
      reason: `The agent at ${client.config.apiBase} does not answer: ${client.lastFailure || 'unknown error'}. Retrying.`,
    };
  }
  const nm = client.sections.network_metrics;
  const health = client.sections.health;
  if (!nm || !nm.body) {
    return {
      kind: 'stale',
      label: 'stale',
      detail: 'no network data',
      reason: nm && nm.error ? nm.error.message : 'the agent has sent no network data yet',
    };
  }
  const age = sectionAge(nm, nowMs);
  const ageText = age === null ? 'age unknown' : `data ${fmtAge(age)} old`;
  if (nm.body.stale === true) {
    return {
      kind: 'stale',
      label: 'stale',
      detail: ageText,
      reason: nm.body.stale_reason || 'the agent marks the network data stale',
    };
  }
  const node = health && health.body && health.body.node;
  if (node && node.reachable === false) {
    return {
      kind: 'stale',
      label: 'stale',
      detail: `node unreachable · ${ageText}`,
      reason: node.last_error ? `node unreachable: ${node.last_error}` : 'the agent cannot reach the node',
    };
  }
  return {
    kind: 'live',
    label: 'live',
    detail: age === null ? '' : `data ${fmtAge(age)} old`,
    reason: `Fresh data from ${client.config.apiBase} (${client.transport}).`,
  };
}

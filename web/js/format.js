// Number and time formatting for people. Every formatter takes a value that may be null,
// undefined or not a finite number and then returns null: the caller shows "unknown" (never 0).

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const dec1Fmt = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const dec2Fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const fixed2Fmt = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const sigFmt = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 });
const pctFmt = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

/** True for a finite number (JSON numbers only; strings are not coerced). */
export function isNum(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

/** 123456 -> "123,456" (the browser's locale). */
export function fmtInt(v) {
  return isNum(v) ? intFmt.format(Math.round(v)) : null;
}

/**
 * A figure of unknown scale: integers with separators, large values with at most 2 decimals,
 * small ones (prices like 0.001) with 4 significant digits.
 */
export function fmtNum(v) {
  if (!isNum(v)) return null;
  if (Number.isInteger(v)) return intFmt.format(v);
  if (Math.abs(v) < 1) return sigFmt.format(v);
  return dec2Fmt.format(v);
}

/** One decimal, always shown: 145.7, 3.0. */
export function fmtDec1(v) {
  return isNum(v) ? dec1Fmt.format(v) : null;
}

/** Two decimals, always shown: 0.98, 1.00. */
export function fmtDec2(v) {
  return isNum(v) ? fixed2Fmt.format(v) : null;
}

/** A ratio in [0, 1] as a percentage: 0.75 -> "75%". */
export function fmtRatio(v) {
  return isNum(v) ? pctFmt.format(v) : null;
}

const kByteUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** Bytes with binary prefixes: 1536 -> "1.5 KiB". */
export function fmtBytes(v) {
  if (!isNum(v)) return null;
  let value = Math.abs(v);
  let unit = 0;
  while (value >= 1024 && unit < kByteUnits.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const sign = v < 0 ? '-' : '';
  const text = unit === 0 ? intFmt.format(value) : dec1Fmt.format(value);
  return `${sign}${text} ${kByteUnits[unit]}`;
}

/** Bytes per second: 1024000 -> "1000.0 KiB/s". */
export function fmtByteRate(v) {
  const b = fmtBytes(v);
  return b === null ? null : `${b}/s`;
}

/** A duration in seconds: 6 -> "6 s", 0.25 -> "250 ms", 95 -> "1 min 35 s". */
export function fmtDuration(seconds) {
  if (!isNum(seconds)) return null;
  const s = Math.abs(seconds);
  if (s < 1 && s > 0) return `${intFmt.format(s * 1000)} ms`;
  if (s < 10) return `${dec2Fmt.format(s)} s`;
  if (s < 60) return `${intFmt.format(s)} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const rest = Math.floor(s % 60);
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  if (s < 86400) {
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  return h ? `${d} d ${h} h` : `${d} d`;
}

/** An age in seconds, coarse: 3 -> "3 s", 125 -> "2 min". */
export function fmtAge(seconds) {
  if (!isNum(seconds)) return null;
  const s = Math.max(0, seconds);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** A unix time (seconds) relative to `nowMs`: "3 s ago", "in 2 s" for a clock ahead of ours. */
export function fmtAgo(unixSeconds, nowMs = Date.now()) {
  if (!isNum(unixSeconds)) return null;
  const diff = nowMs / 1000 - unixSeconds;
  if (diff < -2) return `in ${fmtAge(-diff)}`;
  if (diff < 1) return 'just now';
  return `${fmtAge(diff)} ago`;
}

/** A unix time (seconds) as a local date and time with the time zone, for tooltips. */
export function fmtDateTime(unixSeconds) {
  if (!isNum(unixSeconds)) return null;
  return new Date(unixSeconds * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'long' });
}

/** Long identifiers (addresses, hashes) shortened in the middle: "0x1234…cdef". */
export function shortId(v, keep = 8) {
  if (v === null || v === undefined) return null;
  const s = String(v);
  if (s.length <= keep * 2 + 1) return s;
  return `${s.slice(0, keep)}…${s.slice(-keep + 2)}`;
}

/** "total_impressions" -> "Total impressions". */
export function humanize(key) {
  const s = String(key).replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/*
 * Time: timeframe arithmetic, exchange-local formatting and the bar countdown.
 *
 * Candle times are epoch seconds (UTC). lightweight-charts works in UTC; the axis and
 * crosshair labels are formatted here in exchange-local time (config.tz), so the browser's
 * own zone never matters. Daily bars are stamped 00:00 UTC of their trading date and are
 * shown as that date. Everything takes the timeframe, zone or session it needs as an
 * argument; the only state is two memo caches.
 */

export function tfSeconds(tf) {
  var m = /^(\d+)([smhd])$/.exec(tf);
  if (!m) return 60;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
}

export function isDaily(tf) {
  return /d$/.test(tf);
}

export function hasSeconds(tf) {
  return /s$/.test(tf);
}

var formatterCache = {};
function formatter(zone, opts) {
  var key = zone + JSON.stringify(opts);
  if (!formatterCache[key]) {
    var o = { timeZone: zone, hourCycle: 'h23' };
    for (var k in opts) o[k] = opts[k];
    formatterCache[key] = new Intl.DateTimeFormat('en-GB', o);
  }
  return formatterCache[key];
}

// {year, month, day, weekday, hour, minute, second} of epoch seconds `t` in `zone`
// (memoized: the axis asks for the same instants on every frame while panning).
var partsCache = new Map();
function partsOf(t, zone, numeric) {
  var key = zone + (numeric ? '#' : '|') + t;
  var hit = partsCache.get(key);
  if (hit) return hit;
  if (partsCache.size > 4000) partsCache.clear();
  var out = partsOfUncached(t, zone, numeric);
  partsCache.set(key, out);
  return out;
}

function partsOfUncached(t, zone, numeric) {
  var parts = formatter(zone, {
    year: 'numeric', month: numeric ? '2-digit' : 'short', day: '2-digit', weekday: 'short',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new Date(t * 1000));
  var out = {};
  for (var i = 0; i < parts.length; i++) out[parts[i].type] = parts[i].value;
  return out;
}

function zoneFor(tf, tz) {
  return isDaily(tf) ? 'UTC' : tz;
}

// Crosshair and legend label: "Fri 20 Nov 2026 14:05" (":ss" on second timeframes; the
// date alone on daily ones).
export function formatFull(t, tf, tz) {
  var p = partsOf(t, zoneFor(tf, tz));
  var date = p.weekday + ' ' + p.day + ' ' + p.month + ' ' + p.year;
  if (isDaily(tf)) return date;
  var time = p.hour + ':' + p.minute + (hasSeconds(tf) ? ':' + p.second : '');
  return date + ' ' + time;
}

// Axis label for a tick mark of lightweight-charts' TickMarkType `type` (the enum is `T`),
// or null for a type it does not know.
export function tickLabel(t, type, T, tf, tz) {
  var p = partsOf(t, zoneFor(tf, tz));
  var label = null;
  switch (type) {
    case T.Year: label = p.year; break;
    case T.Month: label = p.month; break;
    case T.DayOfMonth: label = p.day + ' ' + p.month; break;
    case T.Time: label = p.hour + ':' + p.minute; break;
    case T.TimeWithSeconds: label = p.hour + ':' + p.minute + ':' + p.second; break;
  }
  return label;
}

// The exchange's session on the local date of instant `t`: {open, close} in epoch s, or
// null on a weekend. Round-the-clock exchanges have no session (null config).
function sessionDay(t, s) {
  var p = partsOf(t, s.tz, true);
  if (p.weekday === 'Sat' || p.weekday === 'Sun') return null;
  var y = Number(p.year), mo = Number(p.month) - 1, d = Number(p.day);
  var asUtc = Date.UTC(y, mo, d, Number(p.hour) % 24, Number(p.minute), Number(p.second)) / 1000;
  var offset = asUtc - Math.floor(t);
  function at(hhmm) {
    var hm = hhmm.split(':');
    return Date.UTC(y, mo, d, Number(hm[0]), Number(hm[1])) / 1000 - offset;
  }
  return { open: at(s.open), close: at(s.close) };
}

export function marketClosed(now, session) {
  if (!session) return false;
  var day = sessionDay(now, session);
  return !day || now < day.open || now >= day.close;
}

// When the bucket holding `now` closes (epoch s), or null when the market is closed.
function bucketEnd(now, tf, session) {
  var s = tfSeconds(tf);
  if (!session) {
    return isDaily(tf) ? (Math.floor(now / 86400) + 1) * 86400 : (Math.floor(now / s) + 1) * s;
  }
  var day = sessionDay(now, session);
  if (!day || now < day.open || now >= day.close) return null;
  if (isDaily(tf)) return day.close;
  return Math.min(day.close, day.open + (Math.floor((now - day.open) / s) + 1) * s);
}

function formatDuration(sec) {
  sec = Math.max(0, Math.floor(sec));
  var h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  var mm = (h && m < 10 ? '0' : '') + m;
  return (h ? h + ':' : '') + mm + ':' + (s < 10 ? '0' : '') + s;
}

// The legend's "closes in 3:07" / "market closed" for the bar of `tf` holding `now`.
export function showCountdown(el, now, tf, session) {
  if (!el) return;
  var end = bucketEnd(now, tf, session);
  el.textContent = end === null ? 'market closed' : 'closes in ' + formatDuration(end - now);
  el.setAttribute('data-closed', end === null ? 'true' : 'false');
}

// "YYYY-MM-DD" of epoch seconds `t` in `zone`: the exchange-local trading date.
export function localDate(t, zone) {
  var p = partsOf(t, zone, true);
  return p.year + '-' + p.month + '-' + p.day;
}

// "YYYY-MM-DD HH:MM:SS" of `t` in `zone` (the CSV export's exchange-local time).
export function localStamp(t, zone) {
  var p = partsOf(t, zone, true);
  return p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute + ':' + p.second;
}

// Epoch seconds of the wall time "YYYY-MM-DD" ["HH:MM"] in `zone`, or null for bad input:
// the zone's offset at the guess, corrected once (so a DST change in between is right).
export function fromLocal(date, time, zone) {
  var d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || '');
  var c = /^(\d{2}):(\d{2})$/.exec(time || '00:00');
  if (!d || !c) return null;
  var wall = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(c[1]), Number(c[2])) / 1000;
  if (!isFinite(wall)) return null;
  function offset(t) {
    var p = partsOf(t, zone, true);
    var hour = Number(p.hour) % 24;
    return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), hour, Number(p.minute), Number(p.second)) / 1000 - t;
  }
  var t = wall - offset(wall);
  return wall - offset(t);
}

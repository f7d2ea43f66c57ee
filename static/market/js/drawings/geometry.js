/*
 * Drawings (issue 12): where a drawing is, framework-free (no chart, no DOM).
 *
 * A drawing's points are {time: epoch seconds (exchange time), price}, never bar indexes,
 * so one drawn on 5m shows in place on 1h and 1d. On the shown timeframe bar i (logical
 * index i, its centre) covers [time_i, time_i + its length) and the logical range
 * [i - 0.5, i + 0.5): a time inside a bar lands inside that bar, in proportion, and a
 * time past the last bar extends to the right one bar length per bar. The mapping and its
 * inverse round-trip, so a point put down lands back under the mouse.
 */
export var POINTS = { hline: 1, hray: 1, text: 1, trend: 2, ray: 2, rect: 2, fib: 2 };
export var KINDS = Object.keys(POINTS);
export var FIB_LEVELS = [0, 0.236, 0.382, 0.5, 0.618, 0.786, 1];
export var HIT_TOLERANCE = 6; // pixels

var UNIT = { s: 1, m: 60, h: 3600, d: 86400 };

export function tfSeconds(tf) {
  var m = /^(\d+)([smhd])$/.exec(String(tf || ''));
  return m ? Number(m[1]) * UNIT[m[2]] : 60;
}

// The last bar starting at or before t (-1: before the first).
function barIndex(bars, t) {
  var lo = 0;
  var hi = bars.length - 1;
  var found = -1;
  while (lo <= hi) {
    var mid = (lo + hi) >> 1;
    if (bars[mid].time <= t) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

// Bar i's length: the timeframe's, shorter when the next bar starts sooner (a session's
// short last bar).
function barLength(bars, i, seconds) {
  if (i + 1 < bars.length) return Math.max(1, Math.min(seconds, bars[i + 1].time - bars[i].time));
  return seconds;
}

export function timeToLogical(bars, seconds, t) {
  var n = bars.length;
  if (!n) return null;
  var i = barIndex(bars, t);
  if (i < 0) return -0.5 + (t - bars[0].time) / seconds;
  var frac = (t - bars[i].time) / barLength(bars, i, seconds);
  if (i < n - 1) frac = Math.min(frac, 1); // in a gap (overnight, a weekend): the bar's right edge
  return i - 0.5 + frac;
}

export function logicalToTime(bars, seconds, logical) {
  var n = bars.length;
  if (!n || logical === null || !isFinite(logical)) return null;
  var k = logical + 0.5;
  var i = Math.max(0, Math.min(n - 1, Math.floor(k)));
  return Math.round(bars[i].time + (k - i) * barLength(bars, i, seconds));
}

// The bar whose range holds `logical` (clamped to the shown bars), for the magnet.
export function barAt(bars, logical) {
  if (!bars.length || logical === null) return null;
  return bars[Math.max(0, Math.min(bars.length - 1, Math.round(logical)))];
}

// Fibonacci level prices: level 0 at the second point, 1 at the first (drawn from the
// swing's start to its end, as TradingView does).
export function fibPrice(points, level) {
  return points[1].price + (points[0].price - points[1].price) * level;
}

function distToSegment(px, py, ax, ay, bx, by, ray) {
  var dx = bx - ax;
  var dy = by - ay;
  var len2 = dx * dx + dy * dy;
  var t = len2 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = ray ? Math.max(0, t) : Math.max(0, Math.min(1, t));
  var cx = ax + t * dx;
  var cy = ay + t * dy;
  return Math.hypot(px - cx, py - cy);
}

/*
 * What (if anything) of drawing `d` is at (x, y), in media pixels: 'anchor' with its index,
 * or 'body'. `xy` are its points in pixels ([{x, y}], x null when off the time scale),
 * `extra`: {width (pane width), textWidth (a text note's measured width)}.
 */
export function hit(d, xy, x, y, extra) {
  var tol = HIT_TOLERANCE;
  for (var a = 0; a < xy.length; a++) {
    if (xy[a].x !== null && xy[a].y !== null && Math.hypot(x - xy[a].x, y - xy[a].y) <= tol + 1) {
      return { part: 'anchor', anchor: a };
    }
  }
  var p = xy[0];
  var q = xy[1];
  if (p.y === null || (d.kind !== 'hline' && p.x === null)) return null;
  switch (d.kind) {
    case 'hline':
      return Math.abs(y - p.y) <= tol ? { part: 'body' } : null;
    case 'hray':
      return Math.abs(y - p.y) <= tol && x >= p.x - tol ? { part: 'body' } : null;
    case 'text': {
      var w = (extra && extra.textWidth) || 8 * String(d.style.text || '').length;
      return x >= p.x - tol && x <= p.x + w + tol && y >= p.y - 20 && y <= p.y + tol ? { part: 'body' } : null;
    }
    case 'trend':
    case 'ray':
      if (q.x === null || q.y === null) return null;
      return distToSegment(x, y, p.x, p.y, q.x, q.y, d.kind === 'ray') <= tol ? { part: 'body' } : null;
    case 'rect':
    case 'fib': {
      if (q.x === null || q.y === null) return null;
      var left = Math.min(p.x, q.x) - tol;
      var right = Math.max(p.x, q.x) + tol;
      var top = Math.min(p.y, q.y) - tol;
      var bottom = Math.max(p.y, q.y) + tol;
      return x >= left && x <= right && y >= top && y <= bottom ? { part: 'body' } : null;
    }
  }
  return null;
}

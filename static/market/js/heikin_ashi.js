/*
 * Heikin-Ashi on the chart (issue 12). The values are the server's
 * (/api/candles?type=heikin_ashi, anchored on the first stored bar: market/core/heikin_ashi.py);
 * only a bar that changed since (the live bar, a repaired one) is stepped on here from the
 * HA bar before it, with the server's formula in the same order of operations, so it
 * equals what the server gives once the bar is stored.
 */

// The HA bar of `bar` after the HA bar `prev` (null: `bar` is the anchor).
export function haStep(prev, bar) {
  var close = (bar.open + bar.high + bar.low + bar.close) / 4;
  var open = prev === null ? (bar.open + bar.close) / 2 : (prev.open + prev.close) / 2;
  return { time: bar.time, open: open, high: Math.max(bar.high, open, close), low: Math.min(bar.low, open, close),
    close: close };
}

/*
 * The HA bars of a chart's bars. known: time -> the server's HA bar; a bar with neither a
 * server value nor an HA bar before it has none yet (drawn as a gap until the page of HA
 * values arrives).
 */
export function createHeikinAshi() {
  var known = new Map();

  return {
    // The server's rows ({time, open, high, low, close}) for some of the bars.
    merge: function (rows) {
      (rows || []).forEach(function (r) {
        known.set(Number(r.time), { time: Number(r.time), open: Number(r.open), high: Number(r.high),
          low: Number(r.low), close: Number(r.close) });
      });
    },
    // Bar `time` changed after the server computed it (`last`: it is the newest bar, so
    // nothing after it depends on it): it and every later bar are stepped on from here on.
    changedFrom: function (time, last) {
      if (last) {
        known.delete(time);
        return;
      }
      Array.from(known.keys()).forEach(function (t) { if (t >= time) known.delete(t); });
    },
    clear: function () { known.clear(); },
    has: function (time) { return known.has(time); },
    // HA bars of ascending `bars` (null where there is none yet).
    of: function (bars) {
      var prev = null;
      return bars.map(function (bar) {
        var ha = known.get(bar.time) || (prev ? haStep(prev, bar) : null);
        prev = ha;
        return ha;
      });
    },
    // The HA bar of `bar` after `prev` (an HA bar or null), the server's when it has it.
    next: function (prev, bar) {
      return known.get(bar.time) || (prev ? haStep(prev, bar) : null);
    },
  };
}

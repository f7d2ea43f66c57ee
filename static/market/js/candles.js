/*
 * Candles as data, no DOM: parsing the server's rows into bars, de-duplicating and sorting
 * them, binary search by time, and the price format their decimals call for.
 * A bar is {time, open, high, low, close, volume}, time in epoch seconds.
 */

export function toBar(c) {
  return {
    time: Number(c.time),
    open: Number(c.open),
    high: Number(c.high),
    low: Number(c.low),
    close: Number(c.close),
    volume: Number(c.volume) || 0,
  };
}

// Ascending, one bar per time (the last one wins), invalid rows dropped.
export function normalize(candles) {
  var byTime = {};
  var times = [];
  (candles || []).forEach(function (c) {
    var bar = toBar(c);
    if (!isFinite(bar.time) || !isFinite(bar.close)) return;
    if (!(bar.time in byTime)) times.push(bar.time);
    byTime[bar.time] = bar;
  });
  times.sort(function (a, b) { return a - b; });
  return times.map(function (t) { return byTime[t]; });
}

// Index of time `t` in ascending `bars`, or -(insertion point) - 1.
export function indexOfTime(bars, t) {
  var lo = 0, hi = bars.length - 1;
  while (lo <= hi) {
    var mid = (lo + hi) >> 1;
    var v = bars[mid].time;
    if (v === t) return mid;
    if (v < t) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1; // insertion point, encoded
}

// Decimal places of the prices seen (2..6), so the scale neither rounds nor pads them.
export function priceFormatFor(candles) {
  var decimals = 2;
  for (var i = Math.max(0, candles.length - 200); i < candles.length; i++) {
    var c = candles[i];
    [c.open, c.high, c.low, c.close].forEach(function (v) {
      var s = String(v);
      var dot = s.indexOf('.');
      if (dot >= 0 && s.indexOf('e') < 0) decimals = Math.max(decimals, s.length - dot - 1);
    });
  }
  decimals = Math.min(decimals, 6);
  return { type: 'price', precision: decimals, minMove: Math.pow(10, -decimals) };
}

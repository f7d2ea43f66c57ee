/*
 * Compare (issue 12): other symbols overlaid on a chart as lines on its price scale, which
 * is switched to percent (lightweight-charts' Percentage mode: the change from the first
 * visible bar, for every series on the scale). Each symbol's candles come from
 * /api/candles at the chart's timeframe, only at the times the chart has bars (so the
 * chart's bar indexes, which drawings and linking use, stay its own), and are read again
 * when the chart's bars change (at most every REFRESH_MS while live).
 *
 * api.compare: [{symbol, color, points, error}] for tests.
 */
var COLORS = ['#f5a623', '#ab47bc', '#29b6f6', '#ec407a'];
var REFRESH_MS = 5000;
var MAX_LIMIT = 10000;

// A comma/space separated list of tickers, upper-cased, each once, not `own`.
export function parseSymbols(text, own) {
  var out = [];
  String(text || '').split(/[\s,]+/).forEach(function (raw) {
    var t = raw.trim().toUpperCase();
    if (t && t !== own && out.indexOf(t) < 0) out.push(t);
  });
  return out;
}

// changed(symbols, problems): after the symbols were set or a read failed.
export function createCompare(LC, view, config, api, changed) {
  var entries = []; // {symbol, color, series, points, error}
  var timer = null;
  var lastRead = 0;
  var gen = 0;
  api.compare = [];

  function publish() {
    api.compare = entries.map(function (e) {
      return { symbol: e.symbol, color: e.color, points: e.points.length, error: e.error };
    });
    if (changed) changed(entries.map(function (e) { return e.symbol; }), entries.filter(function (e) { return e.error; }));
  }

  function read(entry) {
    var bars = view.bars;
    if (!bars.length) return Promise.resolve();
    var my = gen;
    var url = new URL(config.api_candles || '/api/candles', window.location.href);
    url.searchParams.set('symbol', entry.symbol);
    url.searchParams.set('tf', view.tf);
    url.searchParams.set('from', String(bars[0].time));
    url.searchParams.set('limit', String(Math.min(MAX_LIMIT, bars.length + 50)));
    return fetch(url.toString(), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (!r.ok) throw new Error(body.error || 'HTTP ' + r.status);
          return body.candles || [];
        });
      })
      .then(function (candles) {
        if (my !== gen || entries.indexOf(entry) < 0 || view.removed()) return;
        var shown = new Set(view.bars.map(function (b) { return b.time; }));
        entry.points = candles.filter(function (c) { return shown.has(Number(c.time)); })
          .map(function (c) { return { time: Number(c.time), value: Number(c.close) }; });
        entry.series.setData(entry.points);
        entry.error = null;
      })
      .catch(function (err) {
        if (my !== gen) return;
        entry.error = entry.symbol + ': ' + err.message;
      })
      .then(function () { if (my === gen) publish(); });
  }

  function readAll() {
    lastRead = Date.now();
    return Promise.all(entries.map(read));
  }

  // The chart's bars changed: read again (at once for new bars, throttled while live).
  view.onBars(function (kind) {
    if (!entries.length) return;
    if (kind === 'series') return; // the compare series stay on the scale
    if (kind !== 'live') {
      gen += 1;
      readAll();
      return;
    }
    if (timer !== null) return;
    var wait = Math.max(0, REFRESH_MS - (Date.now() - lastRead));
    timer = window.setTimeout(function () {
      timer = null;
      if (!view.removed()) readAll();
    }, wait);
  });

  // The compared symbols (tickers): series added and removed to match. Resolves when read.
  function setSymbols(symbols) {
    gen += 1;
    var keep = [];
    entries.forEach(function (e) {
      if (symbols.indexOf(e.symbol) >= 0) keep.push(e);
      else view.chart.removeSeries(e.series);
    });
    entries = symbols.map(function (s) {
      var found = keep.filter(function (e) { return e.symbol === s; })[0];
      if (found) return found;
      var used = keep.map(function (e) { return e.color; });
      var color = COLORS.filter(function (c) { return used.indexOf(c) < 0; })[0] || COLORS[0];
      keep.push({ color: color });
      var series = view.chart.addSeries(LC.LineSeries, { color: color, lineWidth: 2, priceLineVisible: false,
        lastValueVisible: true, crosshairMarkerVisible: false, title: s }, 0);
      return { symbol: s, color: color, series: series, points: [], error: null };
    });
    if (entries.length && view.scale() === 'normal') view.setScale('percent');
    publish();
    return readAll();
  }

  return {
    setSymbols: setSymbols,
    symbols: function () { return entries.map(function (e) { return e.symbol; }); },
  };
}

/*
 * Compare (issue 12): other symbols overlaid on a chart as lines on its price scale, which
 * is switched to percent (lightweight-charts' Percentage mode: the change from the first
 * visible bar, for every series on the scale). Each symbol's closes are drawn only at the
 * times the chart has bars (so the chart's bar indexes, which drawings and linking use,
 * stay its own). They are read from /api/candles at the chart's timeframe when the chart's
 * bars are set or older ones are added, and kept live by a stream of their own on the
 * page's one socket (socket.js createStream; subscribed once the first read found the
 * symbol, so an unknown one is an error here and not on the page's status badge).
 *
 * api.compare: [{symbol, color, points, error, live}] for tests.
 */
import { createStream } from './socket.js';

var COLORS = ['#f5a623', '#ab47bc', '#29b6f6', '#ec407a'];
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

// changed(symbols, problems): after the symbols were set or a read failed. connection: the
// page's socket (socket.js createConnection); without it the lines follow only the reads.
export function createCompare(LC, view, config, api, changed, connection) {
  var entries = []; // {symbol, color, series, values: Map time -> close, points, error, stream, tf}
  var gen = 0;
  api.compare = [];

  function publish() {
    api.compare = entries.map(function (e) {
      return { symbol: e.symbol, color: e.color, points: e.points.length, error: e.error, live: !!e.stream };
    });
    if (changed) changed(entries.map(function (e) { return e.symbol; }), entries.filter(function (e) { return e.error; }));
  }

  // The line: the entry's closes at the chart's bar times.
  function render(entry) {
    entry.points = [];
    view.bars.forEach(function (b) {
      var v = entry.values.get(b.time);
      if (v !== undefined) entry.points.push({ time: b.time, value: v });
    });
    entry.series.setData(entry.points);
  }

  // Candles of the entry's symbol (a read, a snapshot): their closes kept, the line redrawn.
  function merge(entry, candles) {
    candles.forEach(function (c) { entry.values.set(Number(c.time), Number(c.close)); });
    render(entry);
  }

  // One close of the entry's symbol (a read or a live candle): the line changes at most there.
  function put(entry, time, close) {
    entry.values.set(time, close);
    var n = view.bars.length;
    if (!n || time < view.bars[0].time) return;
    var last = entry.points.length ? entry.points[entry.points.length - 1] : null;
    var lastBar = view.bars[n - 1].time;
    if (time > lastBar) return; // the chart has no bar there yet ('live' below adds it)
    if (last && time === last.time) {
      last.value = close;
      entry.series.update({ time: time, value: close });
    } else if (time === lastBar && (!last || last.time < time)) {
      entry.points.push({ time: time, value: close });
      entry.series.update({ time: time, value: close });
    } else {
      render(entry); // an older bar revised (gap repair), or one in between: rare
    }
  }

  // The stream that keeps the entry's line live, on the page's socket: a view of its own
  // that the socket module fills (snapshots, candles), at the chart's timeframe.
  function follow(entry) {
    if (!connection || entry.stream) return;
    var proxy = {
      symbol: entry.symbol,
      get tf() { return view.tf; },
      lastBar: function () {
        var newest = null;
        entry.values.forEach(function (v, t) { if (newest === null || t > newest) newest = t; });
        return newest === null ? null : { time: newest };
      },
      setData: function (candles) { merge(entry, candles); },
      applyCandle: function (c) { put(entry, Number(c.time), Number(c.close)); },
    };
    entry.tf = view.tf;
    entry.stream = createStream(connection, proxy, {});
    if (connection.isOpen()) entry.stream.subscribe(); // else when the socket opens
  }

  function unfollow(entry) {
    if (!entry.stream) return;
    entry.stream.close();
    entry.stream = null;
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
        merge(entry, candles);
        entry.error = null;
        follow(entry);
      })
      .catch(function (err) {
        if (my !== gen) return;
        entry.error = entry.symbol + ': ' + err.message;
      })
      .then(function () { if (my === gen) publish(); });
  }

  function readAll() {
    return Promise.all(entries.map(read));
  }

  // The chart's bars changed: a new live bar takes the close already there; new or older
  // bars are read (a timeframe switch also moves the streams to the new timeframe).
  view.onBars(function (kind) {
    if (!entries.length) return;
    if (kind === 'series') return; // the compare series stay on the scale
    if (kind === 'live') {
      var bar = view.bars[view.bars.length - 1];
      entries.forEach(function (e) {
        var v = bar ? e.values.get(bar.time) : undefined;
        var last = e.points.length ? e.points[e.points.length - 1] : null;
        if (v !== undefined && (!last || last.time < bar.time)) put(e, bar.time, v);
      });
      return;
    }
    gen += 1;
    entries.forEach(function (e) {
      if (e.tf === view.tf) return;
      unfollow(e); // subscribed again at the new timeframe once read
      e.values = new Map();
    });
    readAll();
  });

  // The compared symbols (tickers): series added and removed to match. Resolves when read.
  function setSymbols(symbols) {
    gen += 1;
    var keep = [];
    entries.forEach(function (e) {
      if (symbols.indexOf(e.symbol) >= 0) {
        keep.push(e);
      } else {
        unfollow(e);
        view.chart.removeSeries(e.series);
      }
    });
    entries = symbols.map(function (s) {
      var found = keep.filter(function (e) { return e.symbol === s; })[0];
      if (found) return found;
      var used = keep.map(function (e) { return e.color; });
      var color = COLORS.filter(function (c) { return used.indexOf(c) < 0; })[0] || COLORS[0];
      keep.push({ color: color });
      var series = view.chart.addSeries(LC.LineSeries, { color: color, lineWidth: 2, priceLineVisible: false,
        lastValueVisible: true, crosshairMarkerVisible: false, title: s }, 0);
      return { symbol: s, color: color, series: series, values: new Map(), points: [], error: null,
        stream: null, tf: view.tf };
    });
    if (entries.length && view.scale() === 'normal') view.setScale('percent');
    publish();
    return readAll();
  }

  return {
    setSymbols: setSymbols,
    symbols: function () { return entries.map(function (e) { return e.symbol; }); },
    // The pane or page goes away: its streams leave the socket.
    close: function () { entries.forEach(unfollow); },
  };
}

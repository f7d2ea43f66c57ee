/*
 * Studies (issue 11) as data and series: the known studies and their parameters, keys
 * (`ema:20`, normalised with the server's defaults, market/core/studies.py), the values the
 * server computed (GET /api/candles?studies=..., the socket's snapshot and candle frames),
 * kept per study by candle time, and their lightweight-charts series: overlays on the
 * price pane (0), each oscillator in a pane of its own after the volume pane (1).
 *
 * A row is {time, value} | {time, macd, signal, hist} | {time, upper, middle, lower} |
 * {time, k, d} | {time, value, direction}; a null field is warm-up (no point drawn).
 */

export var MAX_STUDIES = 8;

var COLORS = ['#2962ff', '#ff9800', '#ab47bc', '#00bcd4', '#e91e63', '#8bc34a', '#795548', '#607d8b'];

// name -> {label, params: [[name, default, integer]], overlay, lines: [field...]}
export var SPECS = {
  sma: { label: 'SMA', params: [['period', 20, true]], overlay: true, lines: ['value'] },
  ema: { label: 'EMA', params: [['period', 20, true]], overlay: true, lines: ['value'] },
  wma: { label: 'WMA', params: [['period', 20, true]], overlay: true, lines: ['value'] },
  bb: { label: 'BB', params: [['period', 20, true], ['k', 2, false]], overlay: true, lines: ['upper', 'middle', 'lower'] },
  vwap: { label: 'VWAP', params: [], overlay: true, lines: ['value'] },
  supertrend: { label: 'Supertrend', params: [['period', 10, true], ['factor', 3, false]], overlay: true, lines: ['value'] },
  rsi: { label: 'RSI', params: [['period', 14, true]], overlay: false, lines: ['value'] },
  macd: { label: 'MACD', params: [['fast', 12, true], ['slow', 26, true], ['signal', 9, true]], overlay: false,
    lines: ['macd', 'signal'], histogram: 'hist' },
  stoch: { label: 'Stoch', params: [['k', 14, true], ['smooth', 3, true], ['d', 3, true]], overlay: false, lines: ['k', 'd'] },
  atr: { label: 'ATR', params: [['period', 14, true]], overlay: false, lines: ['value'] },
  obv: { label: 'OBV', params: [], overlay: false, lines: ['value'] },
};

function fmtNumber(v) {
  return String(Number(v)); // 2.0 -> "2", as the server writes it
}

// "EMA:20" / "ema" -> "ema:20"; null when the name is unknown or a parameter is not a
// positive number (the server checks the ranges and answers 400 naming the key).
export function normalizeKey(raw) {
  var parts = String(raw || '').trim().toLowerCase().split(':');
  var spec = SPECS[parts[0]];
  if (!spec || parts.length - 1 > spec.params.length) return null;
  var out = [parts[0]];
  for (var i = 0; i < spec.params.length; i++) {
    var p = spec.params[i];
    var text = parts[i + 1];
    var v = text === undefined || text === '' ? p[1] : Number(text);
    if (!isFinite(v) || v <= 0 || (p[2] && Math.floor(v) !== v)) return null;
    out.push(fmtNumber(v));
  }
  return out.join(':');
}

// "ema:20,bogus,rsi" -> {keys: ['ema:20', 'rsi:14'], bad: ['bogus']} (no duplicates, at most 8).
export function parseKeys(text) {
  var keys = [], bad = [];
  String(text || '').split(',').forEach(function (raw) {
    if (!raw.trim()) return;
    var key = normalizeKey(raw);
    if (key === null || keys.length >= MAX_STUDIES) bad.push(raw.trim());
    else if (keys.indexOf(key) < 0) keys.push(key);
  });
  return { keys: keys, bad: bad };
}

export function specOf(key) {
  return SPECS[key.split(':')[0]];
}

export function paramsOf(key) {
  return key.split(':').slice(1).map(Number);
}

export function labelOf(key) {
  var parts = key.split(':');
  return SPECS[parts[0]].label + (parts.length > 1 ? ' ' + parts.slice(1).join(' ') : '');
}

/*
 * The chart's studies. LC: the lightweight-charts global; view: the chart view (its chart,
 * bars, formatPrice). changed(): after values or the set of studies changed.
 */
export function createStudies(LC, view, changed) {
  var chart = view.chart;
  var entries = []; // {key, spec, color, byTime: {time: row}, series: {field: ISeriesApi}}

  function removeAll() {
    // Oscillator panes go with their last series; remove from the bottom pane up.
    for (var i = entries.length - 1; i >= 0; i--) {
      var s = entries[i].series;
      for (var f in s) chart.removeSeries(s[f]);
      entries[i].series = {};
    }
  }

  function buildSeries() {
    var nextPane = 2;
    entries.forEach(function (e, i) {
      var pane = e.spec.overlay ? 0 : nextPane++;
      var common = { lineWidth: e.spec.overlay ? 1 : 2, priceLineVisible: false, lastValueVisible: !e.spec.overlay,
        crosshairMarkerVisible: false };
      e.color = COLORS[i % COLORS.length];
      if (e.spec.histogram) {
        e.series[e.spec.histogram] = chart.addSeries(LC.HistogramSeries,
          { priceLineVisible: false, lastValueVisible: false, color: 'rgba(38, 166, 154, 0.5)' }, pane);
      }
      e.spec.lines.forEach(function (field, j) {
        var opts = Object.assign({}, common, { color: j === 0 ? e.color : COLORS[(i + 3 + j) % COLORS.length] });
        if (e.spec.overlay && field !== 'middle' && e.spec.lines.length > 1) opts.lineStyle = LC.LineStyle.Dashed;
        if (e.spec.overlay) opts.priceFormat = view.series().options().priceFormat;
        e.series[field] = chart.addSeries(LC.LineSeries, opts, pane);
      });
    });
    var panes = chart.panes();
    for (var p = 2; p < panes.length; p++) panes[p].setStretchFactor(1);
    if (panes.length > 2) panes[0].setStretchFactor(Math.max(3, panes.length));
  }

  function point(e, field, row) {
    var v = row[field];
    if (v === null || v === undefined) return { time: row.time }; // whitespace: warm-up
    var p = { time: row.time, value: Number(v) };
    if (field === 'hist') p.color = v >= 0 ? 'rgba(38, 166, 154, 0.6)' : 'rgba(239, 83, 80, 0.6)';
    if (e.spec.label === 'Supertrend') p.color = row.direction < 0 ? '#26a69a' : '#ef5350';
    return p;
  }

  // Every shown bar gets a point (whitespace where there is no value), so the study
  // panes share the price pane's logical range.
  function pushEntry(e) {
    for (var field in e.series) {
      var data = new Array(view.bars.length);
      for (var i = 0; i < view.bars.length; i++) {
        var t = view.bars[i].time;
        var row = e.byTime[t];
        data[i] = row ? point(e, field, row) : { time: t };
      }
      e.series[field].setData(data);
    }
  }

  function find(key) {
    for (var i = 0; i < entries.length; i++) if (entries[i].key === key) return entries[i];
    return null;
  }

  function take(studies, replace) {
    entries.forEach(function (e) {
      var rows = studies[e.key];
      if (!rows) return;
      if (replace) e.byTime = {};
      for (var i = 0; i < rows.length; i++) if (rows[i]) e.byTime[rows[i].time] = rows[i];
    });
  }

  // The set of studies (normalised keys, in order); values already held are kept, and
  // `values` ({key: rows}, optional) added before the series are drawn.
  function setKeys(keys, values) {
    var old = {};
    entries.forEach(function (e) { old[e.key] = e.byTime; });
    removeAll();
    entries = keys.map(function (key) {
      return { key: key, spec: specOf(key), color: null, byTime: old[key] || {}, series: {} };
    });
    if (values) take(values, true);
    buildSeries();
    entries.forEach(pushEntry);
    changed();
  }

  // {key: [rows]} from the API or a snapshot; merged by time (replace: drop what was held).
  function merge(studies, replace) {
    if (!studies) return;
    take(studies, replace);
    entries.forEach(pushEntry);
    changed();
  }

  // A live candle frame's {key: value-or-object} for the candle at `time`.
  function applyLive(time, values) {
    if (!values) return;
    entries.forEach(function (e) {
      if (!(e.key in values)) return;
      var v = values[e.key];
      var row = v !== null && typeof v === 'object' ? Object.assign({}, v, { time: time }) : { time: time, value: v };
      e.byTime[time] = row;
      for (var field in e.series) e.series[field].update(point(e, field, row));
    });
    changed();
  }

  // [{key, label, color, text}] at `time` (text '—' during warm-up).
  function valuesAt(time) {
    return entries.map(function (e) {
      var row = time === null || time === undefined ? null : e.byTime[time];
      var fields = e.spec.lines.concat(e.spec.histogram ? [e.spec.histogram] : []);
      var text = fields.map(function (f) {
        var v = row ? row[f] : null;
        if (v === null || v === undefined) return '—';
        return e.spec.overlay ? view.formatPrice(v) : Number(v).toFixed(2);
      }).join(' ');
      return { key: e.key, label: labelOf(e.key), color: e.color, text: text,
        raw: row ? fields.map(function (f) { return row[f] === undefined ? null : row[f]; }) : null };
    });
  }

  return {
    keys: function () { return entries.map(function (e) { return e.key; }); },
    setKeys: setKeys,
    merge: merge,
    applyLive: applyLive,
    valuesAt: valuesAt,
    redraw: function () { entries.forEach(pushEntry); },
    // Other bars (a timeframe switch): the values held are not theirs.
    clear: function () { entries.forEach(function (e) { e.byTime = {}; }); },
    rebuild: function () { removeAll(); buildSeries(); entries.forEach(pushEntry); },
  };
}

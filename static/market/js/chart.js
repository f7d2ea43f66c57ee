/*
 * The chart: one lightweight-charts v5 chart (the vendored standalone build's global,
 * passed in as LC) with the price series in pane 0 (candles, hollow candles, OHLC bars,
 * Heikin-Ashi, line, area or baseline: TYPES) and volume in pane 1, and the bars it shows.
 *
 * Owns the shown bars (view.bars, ascending; only this module writes them; always the real
 * candles, also under Heikin-Ashi, whose values come from the server: heikin_ashi.js), the
 * chart type, the price scale mode (normal, log, percent), the timeframe's axis options,
 * the theme colours and the view's position: replacing, merging and prepending bars keep
 * the visible bars where they are. A candle with the time of a shown bar replaces it, also
 * an older one (the server's gap repair). view.onBars(fn) tells the overlays (compare.js,
 * breaks.js) what changed: 'set', 'live', 'older' or 'series' (a new price series).
 */
import { indexOfTime, normalize, priceFormatFor, toBar } from './candles.js';
import { createHeikinAshi } from './heikin_ashi.js';
import { storageSet, TYPE_KEY } from './storage.js';
import { formatFull, hasSeconds, isDaily, tickLabel } from './time.js';

var DEFAULT_BAR_SPACING = 6;
var MAX_BAR_SPACING = 24;
export var TYPES = ['candles', 'hollow', 'bars', 'heikin_ashi', 'line', 'area', 'baseline'];
export var SCALES = ['normal', 'log', 'percent'];
var OHLC_TYPES = ['candles', 'hollow', 'bars', 'heikin_ashi'];
var UP = '#26a69a';
var DOWN = '#ef5350';
var THEMES = {
  dark: { background: '#131722', text: '#b2b5be', grid: 'rgba(42, 46, 57, 0.6)', border: '#2a2e39' },
  light: { background: '#ffffff', text: '#191919', grid: 'rgba(197, 203, 206, 0.5)', border: '#d6dcde' },
};

// The page's theme (static/market/theme.js set it before the first paint).
export function theme() {
  return document.documentElement.getAttribute('data-theme') === 'light' ? 'light' : 'dark';
}

function chartColors(LC, name) {
  var c = THEMES[name];
  return {
    layout: { background: { type: LC.ColorType.Solid, color: c.background }, textColor: c.text,
      panes: { separatorColor: c.border } },
    grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
    rightPriceScale: { borderColor: c.border },
    timeScale: { borderColor: c.border },
  };
}

function volumeOf(bar) {
  return {
    time: bar.time,
    value: bar.volume,
    color: bar.close >= bar.open ? 'rgba(38, 166, 154, 0.5)' : 'rgba(239, 83, 80, 0.5)',
  };
}

/*
 * opts: {symbol, tf, tz, session, candles (the page's, for the price format), api
 * (window.tickchart), changed() (after the shown bars changed), replaced() (when setData
 * replaced them all), typeButtons (the [data-type] buttons to press; default: the page's),
 * remember (default true: the chart type is kept in localStorage; a layout's pane keeps
 * its own in the layout)}. Returns the view: {chart, symbol, tf, tz, session, bars, ...methods}.
 */
export function createChart(LC, chartEl, opts) {
  var api = opts.api;
  var view = {
    symbol: opts.symbol,
    tf: opts.tf,
    tz: opts.tz,
    session: opts.session,
    bars: [], // ascending {time, open, high, low, close, volume}
  };
  var seriesType = 'candles';
  var scale = 'normal';
  var ha = createHeikinAshi();
  var haBars = []; // aligned with view.bars under Heikin-Ashi (null: no value yet)
  var barListeners = [];
  function notify(kind) {
    barListeners.forEach(function (fn) { fn(kind); });
  }

  function formatTime(t) {
    return formatFull(t, view.tf, view.tz);
  }

  function tickMark(t, type) {
    var label = tickLabel(t, type, LC.TickMarkType, view.tf, view.tz);
    if (label !== null) {
      api.tickLabels.push(label);
      if (api.tickLabels.length > 200) api.tickLabels.splice(0, 100);
    }
    return label;
  }

  var options = chartColors(LC, theme());
  options.autoSize = true;
  options.timeScale.timeVisible = !isDaily(view.tf);
  options.timeScale.secondsVisible = hasSeconds(view.tf);
  options.timeScale.barSpacing = DEFAULT_BAR_SPACING;
  options.timeScale.maxBarSpacing = MAX_BAR_SPACING;
  options.timeScale.minBarSpacing = 0.05;
  // The oldest bar's label is drawn whole only with the left edge fixed ("02 De" otherwise).
  // Scroll-back still loads older pages. The right edge stays free: drawings reach into
  // the future (a projected trend line), as on every charting tool.
  options.timeScale.fixLeftEdge = true;
  options.timeScale.tickMarkFormatter = function (time, type) { return tickMark(time, type); };
  options.localization = { timeFormatter: function (time) { return formatTime(time); } };
  options.crosshair = { mode: LC.CrosshairMode.Normal };
  var chart = LC.createChart(chartEl, options);
  view.chart = chart;
  api.chart = chart;

  var priceFormat = priceFormatFor(opts.candles || []);
  var series = null;
  var volumeSeries = chart.addSeries(
    LC.HistogramSeries,
    { priceFormat: { type: 'volume' }, priceLineVisible: false, lastValueVisible: true },
    1
  );

  function makeSeries(type) {
    var common = { priceFormat: priceFormat, priceLineVisible: true, lastValueVisible: true,
      priceLineStyle: LC.LineStyle.Dashed };
    if (type === 'line') {
      common.color = UP;
      common.lineWidth = 2;
      return chart.addSeries(LC.LineSeries, common, 0);
    }
    if (type === 'area') {
      common.lineColor = UP;
      common.lineWidth = 2;
      return chart.addSeries(LC.AreaSeries, common, 0);
    }
    if (type === 'baseline') {
      common.lineWidth = 2;
      common.topLineColor = UP;
      common.topFillColor1 = 'rgba(38, 166, 154, 0.28)';
      common.topFillColor2 = 'rgba(38, 166, 154, 0.05)';
      common.bottomLineColor = DOWN;
      common.bottomFillColor1 = 'rgba(239, 83, 80, 0.05)';
      common.bottomFillColor2 = 'rgba(239, 83, 80, 0.28)';
      return chart.addSeries(LC.BaselineSeries, common, 0);
    }
    if (type === 'bars') {
      common.upColor = UP;
      common.downColor = DOWN;
      common.openVisible = true;
      common.thinBars = false;
      return chart.addSeries(LC.BarSeries, common, 0);
    }
    common.upColor = type === 'hollow' ? 'rgba(0, 0, 0, 0)' : UP;
    common.downColor = DOWN;
    common.borderUpColor = UP;
    common.borderDownColor = DOWN;
    common.wickUpColor = UP;
    common.wickDownColor = DOWN;
    return chart.addSeries(LC.CandlestickSeries, common, 0);
  }

  function layoutPanes() {
    var panes = chart.panes();
    if (panes.length > 1) {
      panes[0].setStretchFactor(3);
      panes[1].setStretchFactor(1);
    }
  }

  function isOhlc(type) {
    return OHLC_TYPES.indexOf(type) >= 0;
  }

  // The series' point of bar `i` of view.bars (under Heikin-Ashi haBars must be current).
  function seriesPoint(bar, i) {
    if (seriesType === 'heikin_ashi') return haBars[i] || { time: bar.time };
    if (isOhlc(seriesType)) return bar;
    return { time: bar.time, value: bar.close };
  }

  function lastBar() {
    return view.bars.length ? view.bars[view.bars.length - 1] : null;
  }

  function prevClose() {
    var n = view.bars.length;
    return n > 1 ? view.bars[n - 2].close : null;
  }

  function pushAll() {
    if (seriesType === 'heikin_ashi') haBars = ha.of(view.bars);
    series.setData(view.bars.map(seriesPoint));
    volumeSeries.setData(view.bars.map(volumeOf));
    updateDirection();
  }

  // Heikin-Ashi values of some bars, from the server (its rows {time, open, high, low, close}).
  function setHeikinAshi(rows) {
    if (removed) return;
    var last = lastBar();
    // The newest bar is stepped here from the one before it: it may have moved since.
    ha.merge((rows || []).filter(function (r) { return !last || Number(r.time) !== last.time; }));
    if (seriesType === 'heikin_ashi') keepRange(0, pushAll);
    api.haLoads = (api.haLoads || 0) + 1;
  }

  // Under Heikin-Ashi: ask for the server's values of the shown bars (history.js does).
  function wantHeikinAshi() {
    if (seriesType === 'heikin_ashi' && view.bars.length && view.fetchHeikinAshi) view.fetchHeikinAshi();
  }

  // Replaces everything shown (new timeframe, first load, a snapshot after a long gap).
  function setData(candles) {
    view.bars = normalize(candles);
    ha.clear();
    opts.replaced();
    pushAll();
    fitView(view.bars.length);
    opts.changed();
    notify('set');
    wantHeikinAshi();
  }

  // Few bars: spread them over the width; enough bars: default spacing, newest in view.
  function fitView(count) {
    var ts = chart.timeScale();
    var width = ts.width() || chartEl.clientWidth - 70; // 0 until autoSize has measured
    if (count > 0 && count * DEFAULT_BAR_SPACING < width) {
      ts.fitContent();
    } else {
      ts.applyOptions({ barSpacing: DEFAULT_BAR_SPACING });
      ts.scrollToRealTime();
    }
  }

  // One whole-candle snapshot: a newer time is appended, a shown time is replaced (also an
  // older bar: the server revised it), a missing older time is inserted.
  function applyCandle(c) {
    var bar = toBar(c);
    if (!isFinite(bar.time) || !isFinite(bar.close)) return;
    var last = lastBar();
    if (!last || bar.time >= last.time) {
      if (last && bar.time === last.time) view.bars[view.bars.length - 1] = bar;
      else view.bars.push(bar);
      var n = view.bars.length;
      ha.changedFrom(bar.time, true);
      if (seriesType === 'heikin_ashi') {
        haBars.length = n - 1;
        haBars.push(ha.next(n > 1 ? haBars[n - 2] : null, bar));
      }
      series.update(seriesPoint(bar, n - 1));
      volumeSeries.update(volumeOf(bar));
    } else {
      var i = indexOfTime(view.bars, bar.time);
      ha.changedFrom(bar.time, false);
      if (i >= 0 && seriesType === 'heikin_ashi') {
        view.bars[i] = bar; // every later HA bar moves with it
        keepRange(0, pushAll);
      } else if (i >= 0) {
        view.bars[i] = bar;
        series.update(seriesPoint(bar, i), true);
        volumeSeries.update(volumeOf(bar), true);
      } else {
        if (view.bars.length && bar.time < view.bars[0].time) return; // before what we show
        view.bars.splice(-i - 1, 0, bar);
        keepRange(0, pushAll);
      }
      api.revisions += 1;
    }
    opts.changed();
    notify('live');
  }

  // Older bars (ascending, all before the first shown) added on the left without moving
  // the visible bars. The caller publishes.
  function prepend(older) {
    keepRange(older.length, function () {
      view.bars = older.concat(view.bars);
      pushAll();
    });
    notify('older');
  }

  // Runs `change` (which adds `added` bars on the left) without moving the visible bars.
  function keepRange(added, change) {
    var ts = chart.timeScale();
    var range = ts.getVisibleLogicalRange();
    change();
    if (range && added) ts.setVisibleLogicalRange({ from: range.from + added, to: range.to + added });
  }

  // The indexes of the first and last bar in view ({from, to}; null without bars).
  function visibleIndexes() {
    var n = view.bars.length;
    if (!n) return null;
    var range = chart.timeScale().getVisibleLogicalRange();
    var from = range ? Math.min(n - 1, Math.max(0, Math.ceil(range.from))) : 0;
    var to = range ? Math.min(n - 1, Math.max(0, Math.floor(range.to))) : n - 1;
    return { from: from, to: Math.max(from, to) };
  }

  // Line and area follow the direction of what is in view: green up, red down; the
  // baseline is the close of the first bar in view.
  function updateDirection() {
    if (isOhlc(seriesType) || !view.bars.length) return;
    var shown = visibleIndexes();
    var from = shown.from;
    var to = shown.to;
    if (seriesType === 'baseline') {
      var base = view.bars[from].close;
      series.applyOptions({ baseValue: { type: 'price', price: base } });
      api.baseline = base;
      return;
    }
    var up = view.bars[to].close >= view.bars[from].close;
    var color = up ? UP : DOWN;
    if (seriesType === 'line') {
      series.applyOptions({ color: color });
    } else {
      series.applyOptions({ lineColor: color, topColor: up ? 'rgba(38, 166, 154, 0.4)' : 'rgba(239, 83, 80, 0.4)',
        bottomColor: up ? 'rgba(38, 166, 154, 0.02)' : 'rgba(239, 83, 80, 0.02)' });
    }
    chartEl.setAttribute('data-direction', up ? 'up' : 'down');
  }

  function setSeriesType(type) {
    if (TYPES.indexOf(type) < 0) type = 'candles';
    if (series && type === seriesType) return;
    var ts = chart.timeScale();
    var range = series ? ts.getVisibleLogicalRange() : null;
    // Add the new series before removing the old one: an emptied pane would be dropped
    // and the volume pane would take its place.
    var old = series;
    seriesType = type;
    series = makeSeries(type);
    if (old) chart.removeSeries(old);
    layoutPanes();
    if (view.bars.length) pushAll();
    if (range) ts.setVisibleLogicalRange(range);
    api.seriesType = type;
    chartEl.setAttribute('data-series-type', type);
    notify('series');
    wantHeikinAshi();
    if (opts.remember !== false) storageSet(TYPE_KEY, type);
    (opts.typeButtons || document.querySelectorAll('[data-type]')).forEach(function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-type') === type ? 'true' : 'false');
    });
  }

  // The price scale: normal, log or percent (lightweight-charts' percent mode is the change
  // from the first visible bar, for the price series and every compare series alike).
  function setScale(mode) {
    if (SCALES.indexOf(mode) < 0) mode = 'normal';
    var M = LC.PriceScaleMode;
    var lc = mode === 'log' ? M.Logarithmic : mode === 'percent' ? M.Percentage : M.Normal;
    chart.priceScale('right', 0).applyOptions({ mode: lc });
    scale = mode;
    api.scale = mode;
    chartEl.setAttribute('data-scale', mode);
  }

  function setTimeframe(tf) {
    view.tf = tf;
    chart.applyOptions({ timeScale: { timeVisible: !isDaily(tf), secondsVisible: hasSeconds(tf) } });
  }

  function applyTheme(name) {
    document.documentElement.setAttribute('data-theme', name);
    chart.applyOptions(chartColors(LC, name));
    api.theme = name;
  }

  // `fn(logicalRange)` at most once per animation frame after the visible range moved,
  // after line and area have taken the direction of what is now in view.
  var rangeListeners = [];
  var rangeFrame = null;
  var removed = false;
  chart.timeScale().subscribeVisibleLogicalRangeChange(function () {
    if (rangeFrame !== null) return;
    rangeFrame = window.requestAnimationFrame(function () {
      rangeFrame = null;
      if (removed) return;
      updateDirection();
      var r = chart.timeScale().getVisibleLogicalRange();
      rangeListeners.forEach(function (fn) { fn(r); });
    });
  });

  view.lastBar = lastBar;
  view.prevClose = prevClose;
  view.series = function () { return series; };
  view.formatPrice = function (v) { return series.priceFormatter().format(v); };
  view.formatTime = formatTime;
  view.setData = setData;
  view.applyCandle = applyCandle;
  view.prepend = prepend;
  view.setSeriesType = setSeriesType;
  view.seriesType = function () { return seriesType; };
  view.setScale = setScale;
  view.scale = function () { return scale; };
  view.setHeikinAshi = setHeikinAshi;
  view.heikinAshi = function () { return seriesType === 'heikin_ashi' ? haBars.slice() : []; };
  view.visibleIndexes = visibleIndexes;
  view.onBars = function (fn) { barListeners.push(fn); };
  view.fetchHeikinAshi = null; // history.js sets it
  view.setTimeframe = setTimeframe;
  view.applyTheme = applyTheme;
  view.onRangeFrame = function (fn) { rangeListeners.push(fn); };
  // The chart goes away (a layout's pane is replaced or removed).
  view.remove = function () {
    removed = true;
    if (rangeFrame !== null) window.cancelAnimationFrame(rangeFrame);
    chart.remove();
  };
  view.removed = function () { return removed; };
  return view;
}

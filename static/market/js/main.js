/*
 * TickChart chart page: the entry module (templates/market/chart.html loads it after the
 * classic scripts static/vendor/lightweight-charts.standalone.production.js, whose global
 * is window.LightweightCharts, and static/auth/access.js, window.tickchartAccess).
 *
 * Reads the view's JSON data block (#chart-config), builds the modules and wires them with
 * explicit objects and callbacks, owns the toolbar (timeframe, chart type, range, theme)
 * and starts: theme, chart type, the embedded candles, the countdown, the socket. The
 * chart tools (compare, scale, session breaks, go to date, full screen, exports:
 * toolbox.js) and the keyboard shortcuts (keys.js) are the layout panes' too.
 *
 * For tests and debugging: document.body.dataset.status is 'connecting' | 'live' |
 * 'stale' | 'reconnecting' | 'market_closed' | 'token_expired' | 'stopped', and
 * window.tickchart holds {symbol, tf, lastCandle, candleCount, firstTime, status, ...}.
 */
import { createAlerts } from './alerts.js';
import { createBreaks } from './breaks.js';
import { createCompare } from './compare.js';
import { createChart, theme } from './chart.js';
import { createDrawings } from './drawings/index.js';
import { createHistory } from './history.js';
import { createIndicators } from './indicators.js';
import { createKeys } from './keys.js';
import { createLegend } from './legend.js';
import { createMarkers } from './markers.js';
import { createRanges } from './ranges.js';
import { createSearch } from './search.js';
import { createSocket } from './socket.js';
import { createStatus } from './status.js';
import { createStudies } from './studies.js';
import { replaceUrl, storageGet, storageSet, THEME_KEY, TYPE_KEY } from './storage.js';
import { showCountdown } from './time.js';
import { createToolbox } from './toolbox.js';
import { createWatchlist } from './watchlist.js';

var LC = window.LightweightCharts;
var configEl = document.getElementById('chart-config');
var chartEl = document.getElementById('chart');
if (LC && configEl && chartEl) {
  start(LC, JSON.parse(configEl.textContent), chartEl);
}

function chartUrl(ticker, tf) {
  var path = '/chart/' + encodeURIComponent(ticker).replace(/%3A/gi, ':') + '/';
  return path + '?tf=' + encodeURIComponent(tf);
}

function start(LC, config, chartEl) {
  var api = (window.tickchart = {
    symbol: config.symbol,
    tf: config.tf,
    lastCandle: null,
    candleCount: 0,
    firstTime: null,
    status: 'connecting',
    feed: null,
    seriesType: 'candles',
    olderLoads: 0,
    revisions: 0,
    tickLabels: [],
    hoverTime: null,
    firstPaintMs: null,
  });

  var legend, candleHistory, studies, indicators, markers, ranges;
  var view = createChart(LC, chartEl, {
    symbol: config.symbol,
    tf: config.tf,
    tz: config.tz || 'UTC',
    session: config.session || null,
    candles: config.candles,
    api: api,
    changed: function () {
      legend.publish();
      if (ranges) ranges.update();
      if (indicators) indicators.renderLegend();
      if (markers) markers.barsChanged(false);
    },
    replaced: function () {
      candleHistory.reset();
      if (studies) studies.redraw();
      if (markers) markers.barsChanged(true);
    },
  });
  legend = createLegend(document.getElementById('legend'), view, api);
  var status = createStatus(document.getElementById('status'), view.session, api);
  studies = createStudies(LC, view, function () { if (indicators) indicators.renderLegend(); });
  candleHistory = createHistory(config, view, api, legend.publish, studies);

  var search = createSearch(document.getElementById('symbol-search'), document.getElementById('search-results'),
    config.api_symbols, chooseSymbol);
  function chooseSymbol(ticker) {
    search.close();
    if (ticker === view.symbol) return;
    window.location.assign(chartUrl(ticker, view.tf));
  }

  var drawings = createDrawings(view, chartEl, api);
  var setSeriesType = view.setSeriesType; // drawings and markers follow the price series (chart type)
  view.setSeriesType = function (type) {
    setSeriesType(type);
    drawings.reattach();
    if (markers) markers.render(); // the markers plugin moves to the new price series too
  };

  var alerts = createAlerts(LC, config, view, api);
  var socket;
  var watchlist = createWatchlist(config, view, function (msg) { return socket.send(msg); },
    function (ticker) { return chartUrl(ticker, view.tf); }, chooseSymbol);
  socket = createSocket(config, view, status, watchlist, {
    keys: studies.keys,
    snapshot: function (values, replaced) { studies.merge(values, replaced); },
    // A snapshot without studies replaced the bars: their values over HTTP.
    replacedWithout: function () { indicators.reload(); },
    candle: studies.applyLive,
    badStudy: function (msg) { indicators.refused(String(msg.message || '')); },
    other: function (msg) {
      if (msg.type === 'drawing') drawings.onFrame(msg);
      else if (msg.type === 'alert_event' || msg.type === 'alert') alerts.message(msg);
      else if (markers) markers.message(msg);
    },
    reopened: function () { // frames may have been missed while the socket was down
      drawings.reload();
      alerts.opened();
      if (markers) markers.load();
    },
  });
  indicators = createIndicators(view, studies, candleHistory, api, function () {
    socket.unsubscribe();
    socket.subscribe();
  });

  // ---- Toolbar ----------------------------------------------------------------------

  function switchTimeframe(tf) {
    if (!tf || tf === view.tf) return;
    socket.unsubscribe();
    var generation = candleHistory.nextGeneration();
    socket.setReplaceOnSnapshot(true); // ignore live updates until the new history is in
    candleHistory.reset();
    studies.clear();
    view.setTimeframe(tf);
    var url = new URL(window.location.href);
    url.searchParams.set('tf', tf);
    replaceUrl(url);
    api.tf = tf;
    watchlist.updateAdd();

    candleHistory.getCandles({})
      .then(function (bars) {
        if (generation !== candleHistory.generation()) return;
        socket.setReplaceOnSnapshot(false);
        view.setData(bars);
        indicators.reload();
        socket.subscribe();
      })
      .catch(function (err) {
        if (generation !== candleHistory.generation()) return;
        console.warn('tickchart: could not load candles for ' + tf + ':', err.message);
        socket.setReplaceOnSnapshot(true);
        socket.subscribe();
      });
  }

  var tfSelect = document.getElementById('tf-select');
  if (tfSelect) {
    tfSelect.addEventListener('change', function () { switchTimeframe(tfSelect.value); });
  }

  // ---- The chart tools and the keyboard -----------------------------------------------
  var breaks = createBreaks(view, api);
  var compare = createCompare(LC, view, config, api, null, socket.connection);
  var toolNote = document.getElementById('tools-note');
  var toolbox = createToolbox(document.getElementById('chart-tools'), {
    view: view, api: api, history: candleHistory, compare: compare, breaks: breaks,
    fullscreenEl: chartEl.closest('.chart-wrap') || chartEl,
    note: function (text) {
      if (!toolNote) return;
      toolNote.hidden = !text;
      toolNote.textContent = text || '';
    },
  });
  createKeys({
    api: api,
    timeframes: config.timeframes || [],
    target: function () {
      return { toolbox: toolbox, setTimeframe: function (tf) {
        if (tfSelect) tfSelect.value = tf;
        switchTimeframe(tf);
      } };
    },
  });
  document.querySelectorAll('[data-type]').forEach(function (b) {
    b.addEventListener('click', function () { view.setSeriesType(b.getAttribute('data-type')); });
  });
  ranges = createRanges(document.querySelectorAll('[data-range]'), config, view, candleHistory.showRange);

  var themeBtn = document.getElementById('theme-toggle');
  function applyTheme(name) {
    view.applyTheme(name);
    if (themeBtn) themeBtn.setAttribute('aria-label', name === 'dark' ? 'Switch to light theme' : 'Switch to dark theme');
  }
  if (themeBtn) {
    themeBtn.addEventListener('click', function () {
      var next = theme() === 'dark' ? 'light' : 'dark';
      storageSet(THEME_KEY, next);
      applyTheme(next);
    });
  }

  // ---- Start ------------------------------------------------------------------------

  // Benchmarks and tests: replace the data with `candles` (e.g. 50,000 bars).
  api.setCandles = function (candles) {
    view.setData(candles);
    return view.bars.length;
  };
  api.loadOlder = candleHistory.loadOlder;
  api.addStudy = indicators.add;
  api.setStudies = indicators.set;
  // Benchmarks: draw `keys` with the API's `values` ({key: rows}) for the shown bars.
  api.drawStudies = function (keys, values) {
    studies.setKeys(keys, values);
  };
  api.series = view.series;
  api.heikinAshi = view.heikinAshi;
  api.visibleTimes = function () {
    var shown = view.visibleIndexes();
    return shown ? view.bars.slice(shown.from, shown.to + 1).map(function (b) { return b.time; }) : [];
  };
  api.times = function () { return view.bars.map(function (b) { return b.time; }); };

  var countdownEl = document.getElementById('countdown');
  function tick() {
    showCountdown(countdownEl, Date.now() / 1000, view.tf, view.session);
    status.refresh();
  }

  if (config.tf_note) { // the URL named no timeframe we have: it now names the one shown
    var shownUrl = new URL(window.location.href);
    shownUrl.searchParams.set('tf', config.tf);
    replaceUrl(shownUrl);
  }
  applyTheme(theme());
  view.setSeriesType(storageGet(TYPE_KEY) || 'candles');
  view.setData(config.candles || []);
  indicators.start();
  markers = createMarkers(LC, view, config, api);
  markers.load();
  window.requestAnimationFrame(function () {
    api.firstPaintMs = performance.now();
  });
  tick();
  window.setInterval(tick, 1000);
  alerts.start();
  socket.connect();
}

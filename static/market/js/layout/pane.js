/*
 * One chart of a layout (issue 12): the chart page's units (chart.js, legend.js,
 * studies.js, history.js, markers.js, drawings/) built inside a pane's element, with its
 * own symbol, timeframe, chart type, studies and drawings, and a stream on the page's one
 * socket (socket.js createStream). A pane is replaced whole when its symbol or timeframe
 * changes (layout/index.js); its chart type and studies change in place.
 *
 * info: {symbol, name, tz, session, candles} (server-rendered, or fetchInfo's).
 * The pane's window.tickchart.panes[i]: {symbol, tf, lastCandle, candleCount, hoverTime,
 * linkedTime, seriesType, scale, compare, sessionBreaks, studies, studyValues, drawings,
 * drawingsLoaded, chart, series(), heikinAshi(), visibleTimes()}. The chart tools
 * (toolbox.js: scale, compare, go to date, session breaks, full screen, exports) are the
 * chart page's.
 */
import { createBreaks } from '../breaks.js';
import { createCompare } from '../compare.js';
import { createChart } from '../chart.js';
import { indexOfTime, normalize } from '../candles.js';
import { createDrawings } from '../drawings/index.js';
import { createHistory } from '../history.js';
import { createLegend } from '../legend.js';
import { createMarkers } from '../markers.js';
import { createStream } from '../socket.js';
import { createStudies, labelOf, parseKeys } from '../studies.js';
import { createToolbox } from '../toolbox.js';

var MAX_LIMIT = 10000; // the API's largest page

// The pane's history and its symbol's zone over HTTP: {symbol, tz, candles, studies?}.
export function fetchInfo(config, symbol, tf, keys) {
  var url = new URL(config.api_candles || '/api/candles', window.location.href);
  url.searchParams.set('symbol', symbol);
  url.searchParams.set('tf', tf);
  if (keys && keys.length) url.searchParams.set('studies', keys.join(','));
  return fetch(url.toString(), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
    .then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) return { symbol: symbol, missing: true, error: body.error || 'HTTP ' + r.status, candles: [] };
        return { symbol: symbol, tz: r.headers.get('X-Exchange-Timezone') || 'UTC', session: null,
          candles: body.candles || [], studies: body.studies };
      });
    })
    .catch(function (err) { return { symbol: symbol, missing: true, error: err.message, candles: [] }; });
}

/*
 * els: {chart, legend, studyLegend, note, tools, root} inside the pane; chart: the layout's
 * chart spec {symbol, tf, type, studies, drawings_visible, scale, compare}; ctx: {LC,
 * config, connection, signedIn, api (the pane's window.tickchart entry), suffix (of the
 * tools' accessible names), crosshair(pane, param), range(pane), edited(field, value)
 * (the user changed the scale or the compare symbols)}.
 */
export function createPane(els, chart, info, ctx) {
  var LC = ctx.LC;
  var api = ctx.api;
  var pane = { api: api };
  api.symbol = chart.symbol;
  api.tf = chart.tf;
  api.tickLabels = [];
  api.olderLoads = 0;
  api.revisions = 0;
  api.hoverTime = null;
  api.linkedTime = null;
  api.missing = !!info.missing;

  var legend, studies, markers;
  var view = createChart(LC, els.chart, {
    symbol: chart.symbol,
    tf: chart.tf,
    tz: info.tz || 'UTC',
    session: info.session || null,
    candles: info.candles,
    api: api,
    typeButtons: [],
    remember: false,
    changed: function () {
      legend.publish();
      renderStudyLegend();
      if (markers) markers.barsChanged(false);
    },
    replaced: function () {
      if (candleHistory) candleHistory.reset();
      if (studies) studies.redraw();
      if (markers) markers.barsChanged(true);
    },
  });
  pane.view = view;
  legend = createLegend(els.legend, view, api, { studyLegend: els.studyLegend, title: false });
  studies = createStudies(LC, view, function () { renderStudyLegend(); });
  var candleHistory = createHistory(ctx.config, view, api, legend.publish, studies);
  var breaks = createBreaks(view, api);
  var compare = createCompare(LC, view, ctx.config, api, function (symbols, problems) {
    note(problems.length ? 'Compare: ' + problems.map(function (p) { return p.error; }).join('; ') : '');
  }, ctx.connection);
  var toolbox = els.tools ? createToolbox(els.tools, {
    view: view, api: api, history: candleHistory, compare: compare, breaks: breaks,
    fullscreenEl: els.root || els.chart, suffix: ctx.suffix || '', note: note,
    scale: function (mode) { if (ctx.edited) ctx.edited('scale', mode); },
    compared: function (symbols) { if (ctx.edited) ctx.edited('compare', symbols); },
  }) : null;

  // ---- the study legend (each study's value at the crosshair, else the newest bar's)
  var hoverTime = null;
  function renderStudyLegend() {
    if (!els.studyLegend || !studies) return;
    var last = view.lastBar();
    var values = studies.valuesAt(hoverTime !== null ? hoverTime : (last ? last.time : null));
    api.studyValues = values.map(function (v) { return { key: v.key, text: v.text }; });
    els.studyLegend.textContent = '';
    values.forEach(function (v) {
      var item = document.createElement('span');
      item.className = 'study-item';
      item.setAttribute('data-study', v.key);
      var name = document.createElement('span');
      name.className = 'study-name';
      name.textContent = v.label;
      if (v.color) name.style.color = v.color;
      var value = document.createElement('span');
      value.className = 'study-value';
      value.textContent = v.text;
      item.appendChild(name);
      item.appendChild(document.createTextNode(' '));
      item.appendChild(value);
      els.studyLegend.appendChild(item);
    });
  }
  view.chart.subscribeCrosshairMove(function (param) {
    var t = param && param.time !== undefined ? Number(param.time) : null;
    hoverTime = t !== null && indexOfTime(view.bars, t) >= 0 ? t : null;
    renderStudyLegend();
    ctx.crosshair(pane, param);
  });
  view.chart.timeScale().subscribeVisibleTimeRangeChange(function () { ctx.range(pane); });

  function note(text) {
    if (!els.note) return;
    els.note.hidden = !text;
    els.note.textContent = text || '';
    api.note = text || null;
  }

  // The values of the shown bars for the chosen studies (HTTP), as the chart page does.
  var loadGen = 0;
  function loadStudies() {
    var keys = studies.keys();
    var gen = ++loadGen;
    if (!keys.length || !view.bars.length) return Promise.resolve();
    return candleHistory.getPage({ from: view.bars[0].time, limit: Math.min(MAX_LIMIT, view.bars.length + 50),
      studies: keys.join(',') }).then(function (page) {
      if (gen !== loadGen) return;
      studies.merge(page.studies, true);
      api.studiesLoaded = (api.studiesLoaded || 0) + 1;
    }).catch(function (err) {
      if (gen === loadGen) note('Indicators: ' + err.message);
    });
  }

  var stream = createStream(ctx.connection, view, {
    keys: studies.keys,
    snapshot: function (values, replaced) { studies.merge(values, replaced); },
    replacedWithout: loadStudies,
    candle: studies.applyLive,
    badStudy: function (msg) { note(String(msg.message || 'bad indicator')); },
  });

  var drawings = null;
  function showDrawings(on) {
    if (on && !drawings) {
      drawings = createDrawings(view, els.chart, api, { bar: null, note: null, signedIn: ctx.signedIn });
    } else if (!on && drawings) {
      drawings.detach();
      drawings = null;
      api.drawings = [];
    }
    api.drawingsVisible = on;
  }

  function setType(type) {
    view.setSeriesType(type);
    if (drawings) drawings.reattach();
    if (markers) markers.render();
  }

  // `keys` (normalised study keys): drawn with what the socket and the API give.
  function setStudies(keys) {
    studies.setKeys(keys);
    api.studies = keys.slice();
    note('');
    if (stream.active()) {
      stream.unsubscribe();
      stream.subscribe();
    }
    return loadStudies();
  }

  // ---- start: the embedded (or fetched) history, drawn before anything else
  view.setSeriesType(chart.type || 'candles');
  view.setScale(chart.scale || 'normal');
  var bars = normalize(info.candles || []);
  var keys = parseKeys((chart.studies || []).join(',')).keys;
  // The bars first, then the studies' series over them: series added empty before the bars
  // left the pane scrolled far past its newest bar.
  view.setData(bars);
  studies.setKeys(keys, info.studies);
  api.studies = keys.slice();
  if (info.missing) note(info.error || 'unknown symbol ' + chart.symbol);
  else if (keys.length && !info.studies) loadStudies();
  markers = createMarkers(LC, view, ctx.config, api);
  if (!info.missing) markers.load();
  if (toolbox) {
    toolbox.setScale(view.scale());
    if (!info.missing && (chart.compare || []).length) toolbox.setCompare(chart.compare);
  }
  showDrawings(chart.drawings_visible !== false);
  if (info.missing) stream.unsubscribe(); // nothing to stream
  else if (ctx.connection.isOpen()) stream.subscribe(); // else when the socket opens

  pane.setType = setType;
  pane.toolbox = toolbox;
  pane.setStudies = setStudies;
  pane.showDrawings = showDrawings;
  pane.studyKeys = studies.keys;
  pane.labelOf = labelOf;
  // A socket frame of another module (drawing, marker).
  pane.message = function (msg) {
    if (msg.type === 'drawing' && drawings) drawings.onFrame(msg);
    else if (msg.type === 'marker') markers.message(msg);
  };
  pane.reopened = function () {
    if (drawings) drawings.reload();
    markers.load();
  };
  pane.destroy = function () {
    stream.close();
    compare.close();
    if (toolbox) toolbox.destroy();
    if (drawings) drawings.detach();
    view.remove();
  };
  api.chart = view.chart;
  api.series = view.series;
  api.times = function () { return view.bars.map(function (b) { return b.time; }); };
  api.heikinAshi = view.heikinAshi;
  api.visibleTimes = function () {
    var shown = view.visibleIndexes();
    return shown ? view.bars.slice(shown.from, shown.to + 1).map(function (b) { return b.time; }) : [];
  };
  return pane;
}

/*
 * History over HTTP (config.api_candles): the candles of a timeframe, older pages added on
 * the left when the view nears the left edge, and the range buttons (1D 5D 1M All), which
 * load older pages until the range is covered.
 *
 * Owns the generation (bumped on every timeframe switch; answers for an older one are
 * dropped) and whether an older page is loading or there is nothing older. Under
 * Heikin-Ashi it also asks for the server's HA values of the shown bars and of every older
 * page (view.fetchHeikinAshi), and it scrolls to a date (goTo), loading what it needs.
 */
import { indexOfTime, normalize } from './candles.js';

var PAGE = 1000; // candles per scroll-back page
var PREFETCH_BARS = 150; // load older history when fewer bars than this are left of the view
var RANGE_PAGE = 10000; // candles per request for the range buttons (the API's maximum)
var MAX_BARS = 60000; // "All" stops here
var RANGES = { '1D': 86400, '5D': 5 * 86400, '1M': 31 * 86400, All: null };

// view: the chart view; api: window.tickchart; publish(): after older bars were added;
// studies (optional): {keys() (the chart's study keys), merge(studies)}: older pages ask
// for the studies too and their values are added with the bars.
export function createHistory(config, view, api, publish, studies) {
  var generation = 0;
  var loadingOlder = false;
  var noMoreOlder = false;
  var rangeBusy = false;

  function candlesUrl(params) {
    var url = new URL(config.api_candles || '/api/candles', window.location.href);
    url.searchParams.set('symbol', view.symbol);
    url.searchParams.set('tf', view.tf);
    for (var k in params) if (params[k] !== undefined && params[k] !== null) url.searchParams.set(k, params[k]);
    return url.toString();
  }

  // {bars (normalized), studies ({key: rows} or undefined)} of the shown symbol and
  // timeframe; params: from, to, limit, studies. A 400 rejects with err.status and
  // err.message the server's (it names a bad study key).
  function getPage(params) {
    return fetch(candlesUrl(params), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) {
          return response.json().catch(function () { return {}; }).then(function (body) {
            var err = new Error(body.error || 'HTTP ' + response.status);
            err.status = response.status;
            throw err;
          });
        }
        return response.json();
      })
      .then(function (body) { return { bars: normalize(body.candles || []), studies: body.studies }; });
  }

  // Bars of the shown symbol and timeframe (normalized); params: to, limit, ...
  function getCandles(params) {
    return getPage(params).then(function (page) { return page.bars; });
  }

  // The server's Heikin-Ashi values for the bars from `from` (the first shown by default).
  var haGen = 0;
  function loadHeikinAshi(from, limit) {
    if (!view.bars.length) return Promise.resolve();
    var asked = generation;
    var gen = ++haGen;
    var first = from === undefined ? view.bars[0].time : from;
    var params = { from: first, limit: Math.min(RANGE_PAGE, limit || view.bars.length + 50), type: 'heikin_ashi' };
    return fetch(candlesUrl(params), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status)); })
      .then(function (body) {
        if (asked !== generation || (from === undefined && gen !== haGen)) return;
        view.setHeikinAshi(body.candles || []);
      })
      .catch(function (err) { console.warn('tickchart: could not load Heikin-Ashi values:', err.message); });
  }
  view.fetchHeikinAshi = function () { return loadHeikinAshi(); };

  // One page older than the first bar, added on the left without moving the view.
  function loadOlder(limit) {
    if (loadingOlder || noMoreOlder || !view.bars.length) return Promise.resolve(0);
    loadingOlder = true;
    var asked = generation;
    var first = view.bars[0].time;
    var keys = studies ? studies.keys() : [];
    var params = { to: first - 1, limit: limit || PAGE };
    if (keys.length) params.studies = keys.join(',');
    return getPage(params)
      .then(function (page) {
        if (asked !== generation) return 0;
        var older = page.bars.filter(function (b) { return b.time < view.bars[0].time; });
        if (page.bars.length < (limit || PAGE)) noMoreOlder = true;
        if (older.length) {
          view.prepend(older);
          if (view.seriesType() === 'heikin_ashi') loadHeikinAshi(older[0].time, older.length + 1);
          if (studies && page.studies) studies.merge(page.studies);
          api.olderLoads += 1;
          publish();
        }
        return older.length;
      })
      .catch(function (err) {
        console.warn('tickchart: could not load older candles:', err.message);
        return 0;
      })
      .then(function (n) {
        loadingOlder = false;
        return n;
      });
  }

  view.onRangeFrame(function (r) {
    if (r && r.from < PREFETCH_BARS && !rangeBusy) loadOlder(PAGE);
  });

  function showRange(code) {
    if (!(code in RANGES) || !view.bars.length) return;
    var span = RANGES[code];
    var asked = generation;
    var target = span === null ? null : view.lastBar().time - span;
    rangeBusy = true;
    document.body.setAttribute('data-loading', 'true');
    function more() {
      if (asked !== generation) return Promise.resolve();
      var enough = target !== null && view.bars[0].time <= target;
      if (enough || noMoreOlder || view.bars.length >= MAX_BARS) return Promise.resolve();
      return loadOlder(RANGE_PAGE).then(function (n) { return n ? more() : null; });
    }
    more().then(function () {
      rangeBusy = false;
      document.body.removeAttribute('data-loading');
      if (asked !== generation) return;
      var ts = view.chart.timeScale();
      if (target === null) {
        ts.fitContent();
      } else {
        var i = indexOfTime(view.bars, target);
        var from = i >= 0 ? i : -i - 1;
        ts.setVisibleLogicalRange({ from: from, to: view.bars.length - 1 + 3 });
      }
      api.range = code;
    });
  }

  // Scroll to the bar that holds time `t` (epoch seconds), keeping the zoom; older pages
  // are loaded first when it is before the first shown bar. Resolves to the bar's time, or
  // null when there is no bar at or before it.
  function goTo(t) {
    if (!view.bars.length || !isFinite(t)) return Promise.resolve(null);
    var asked = generation;
    rangeBusy = true;
    function more() {
      if (asked !== generation || view.bars[0].time <= t || noMoreOlder || view.bars.length >= MAX_BARS) {
        return Promise.resolve();
      }
      return loadOlder(RANGE_PAGE).then(function (n) { return n ? more() : null; });
    }
    return more().then(function () {
      rangeBusy = false;
      if (asked !== generation) return null;
      var bars = view.bars;
      var i = indexOfTime(bars, t);
      if (i < 0) i = Math.max(0, -i - 2); // the bar before it holds it
      if (bars[i].time > t) return null; // before all history
      var ts = view.chart.timeScale();
      var r = ts.getVisibleLogicalRange();
      var half = r ? Math.max(5, (r.to - r.from) / 2) : 50;
      ts.setVisibleLogicalRange({ from: i - half, to: i + half });
      api.wentTo = bars[i].time;
      return bars[i].time;
    }, function (err) {
      rangeBusy = false;
      throw err;
    });
  }

  return {
    getCandles: getCandles,
    goTo: goTo,
    loadHeikinAshi: loadHeikinAshi,
    getPage: getPage,
    loadOlder: loadOlder,
    showRange: showRange,
    // New bars replaced the old ones: there may be older pages again.
    reset: function () { noMoreOlder = false; },
    // A timeframe switch: answers asked for before it are dropped. Returns the new one.
    nextGeneration: function () { generation += 1; return generation; },
    generation: function () { return generation; },
  };
}

/*
 * Markers a strategy posted (issue 16): GET /api/markers on load, then the socket's
 * `marker` frames (op upsert | delete) for this symbol. Drawn as lightweight-charts series
 * markers on the price series, each on the bar that contains its time, so one posted at a
 * 5 s time sits on the right 1 h bar too; a time after the last bar waits on the last one.
 *
 * window.tickchart.markers: what is drawn ({id, time (the bar's), text, ...}), for tests.
 */
import { indexOfTime } from './candles.js';

export function createMarkers(LC, view, config, api) {
  var byId = {};
  var plugin = null;
  var attachedTo = null;
  var drawnBars = -1;

  function barTime(t) {
    var bars = view.bars;
    if (!bars.length) return null;
    var i = indexOfTime(bars, t);
    if (i >= 0) return bars[i].time;
    var at = -i - 1; // insertion point: the bar before it contains t
    return at === 0 ? null : bars[at - 1].time;
  }

  function render() {
    var series = view.series();
    if (!series) return;
    var shown = [];
    Object.keys(byId).forEach(function (id) {
      var m = byId[id];
      var t = barTime(m.time);
      if (t === null) return; // before the first loaded bar: shown once scrolled to
      var one = { id: String(m.id), time: t, position: m.position, shape: m.shape, color: m.color, text: m.text };
      if (m.price !== null && m.price !== undefined) one.price = m.price;
      shown.push(one);
    });
    shown.sort(function (a, b) { return a.time - b.time || (a.id < b.id ? -1 : 1); });
    if (plugin && attachedTo !== series) { // the chart type changed: a new price series
      plugin.detach();
      plugin = null;
    }
    if (!plugin) {
      plugin = LC.createSeriesMarkers(series, shown);
      attachedTo = series;
    } else {
      plugin.setMarkers(shown);
    }
    drawnBars = view.bars.length;
    api.markers = shown;
  }

  function load() {
    var url = config.api_markers + '?symbol=' + encodeURIComponent(view.symbol);
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : { markers: [] }; })
      .then(function (body) {
        byId = {};
        (body.markers || []).forEach(function (m) { byId[m.id] = m; });
        render();
      })
      .catch(function (err) { console.warn('tickchart: could not load markers:', err.message); });
  }

  function message(msg) {
    if (msg.type !== 'marker' || !msg.marker || msg.marker.symbol !== view.symbol) return;
    if (msg.op === 'delete') delete byId[msg.marker.id];
    else byId[msg.marker.id] = msg.marker;
    render();
  }

  return {
    load: load,
    message: message,
    render: render,
    // After the shown bars changed: redraw when bars were added or replaced (not per tick).
    barsChanged: function (replaced) {
      if (replaced || view.bars.length !== drawnBars) render();
    },
  };
}

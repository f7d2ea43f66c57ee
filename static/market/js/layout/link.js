/*
 * Linking the panes of a layout (issue 12): the panes of one link group (A, B, C; none:
 * on its own) share the crosshair (lightweight-charts setCrosshairPosition, at the bar of
 * each pane that contains the hovered time, so 1m and 1h panes line up) and the visible
 * time range. Symbol and timeframe changes are spread by layout/index.js (groupOf).
 *
 * Only the pane the user is working in (pointer over it, or the last one touched) leads:
 * what the others do because of it is not sent back, so nothing loops.
 */
import { indexOfTime } from '../candles.js';
import { tfSeconds } from '../time.js';

// The bar of `bars` (ascending) that contains time `t`: the last one at or before it.
function barAt(bars, t) {
  if (!bars.length) return null;
  var i = indexOfTime(bars, t);
  if (i >= 0) return bars[i];
  var at = -i - 1;
  return at === 0 ? null : bars[at - 1];
}

// The index of the bar of `bars` that contains time `t` (0 before the first).
function indexAt(bars, t) {
  var i = indexOfTime(bars, t);
  return i >= 0 ? i : Math.max(0, -i - 2);
}

// panes(): the layout's panes ({view, api, group()}).
export function createLinks(panes) {
  var leader = null;

  function partners(src) {
    var group = src.group();
    if (!group) return [];
    return panes().filter(function (p) { return p !== src && p.group() === group && p.chart; });
  }

  // A pane's element: the pointer in it, or a touch or wheel, makes it the leader.
  function watch(pane, el) {
    ['pointerenter', 'pointerdown', 'wheel', 'touchstart'].forEach(function (type) {
      el.addEventListener(type, function () { leader = pane; }, { passive: true, capture: true });
    });
  }

  function crosshair(src, param) {
    if (src !== leader) return;
    var t = param && param.time !== undefined && param.point ? Number(param.time) : null;
    partners(src).forEach(function (p) {
      var chart = p.chart.view.chart;
      var bar = t === null ? null : barAt(p.chart.view.bars, t);
      var series = p.chart.view.series();
      if (!bar || !series) {
        chart.clearCrosshairPosition();
        p.chart.api.linkedTime = null;
        return;
      }
      chart.setCrosshairPosition(bar.close, bar.time, series);
      p.chart.api.linkedTime = bar.time;
    });
  }

  // The times the leader shows, within its bars: lightweight-charts extrapolates times over
  // the empty space right of the last bar (fitted few bars leave some), which would scroll
  // a finer pane that far into the future. The last bar counts to its bucket's end.
  function shownTimes(view) {
    var r = view.chart.timeScale().getVisibleRange();
    var bars = view.bars;
    if (!r || !bars.length) return null;
    var from = Math.max(Number(r.from), bars[0].time);
    var end = bars[bars.length - 1].time + tfSeconds(view.tf) - 1;
    return { from: from, to: Math.min(Number(r.to), end) };
  }

  function range(src) {
    if (src !== leader) return;
    var r = shownTimes(src.chart.view);
    if (!r) return;
    // Times to the partner's own bar indexes (the bar containing each end), not
    // setVisibleRange: its time-to-index mapping put a finer pane past its last bar.
    partners(src).forEach(function (p) {
      var bars = p.chart.view.bars;
      if (!bars.length) return;
      p.chart.view.chart.timeScale().setVisibleLogicalRange({ from: indexAt(bars, r.from), to: indexAt(bars, r.to) });
      p.chart.api.linkedRange = r;
    });
  }

  return { watch: watch, crosshair: crosshair, range: range, leader: function () { return leader; } };
}

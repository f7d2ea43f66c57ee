/*
 * Session breaks (issue 12): a dashed vertical line before the first bar of each trading
 * session, drawn by a lightweight-charts series primitive on the price series. A session
 * starts where the exchange-local trading date changes (the exchange's time zone, view.tz:
 * the server's sessions, market/core/sessions.py, are exchange-local days; a round-the-clock
 * market's is the UTC day), so holidays and special sessions follow the bars themselves.
 * None on daily and longer timeframes (every bar is a session).
 *
 * api.sessionBreaks: the times of the bars a break is drawn before; api.breaksDrawn: how
 * many were in view at the last frame.
 */
import { logicalX } from './drawings/primitives.js';
import { isDaily, localDate } from './time.js';

// Indexes of `bars` that open a session in `zone` (never the first bar: its session may
// have started before it).
export function sessionStarts(bars, zone) {
  var out = [];
  var prev = null;
  for (var i = 0; i < bars.length; i++) {
    var day = localDate(bars[i].time, zone);
    if (prev !== null && day !== prev) out.push(i);
    prev = day;
  }
  return out;
}

export function createBreaks(view, api) {
  var on = true;
  var starts = [];
  var chart = null;
  var requestUpdate = null;
  var attachedTo = null;

  var counted = 0;
  function recompute() {
    counted = view.bars.length;
    starts = on && !isDaily(view.tf) ? sessionStarts(view.bars, view.tz || 'UTC') : [];
    api.sessionBreaks = starts.map(function (i) { return view.bars[i].time; });
    if (requestUpdate) requestUpdate();
  }

  var renderer = {
    draw: function (target) {
      if (!chart || !starts.length) {
        api.breaksDrawn = 0;
        return;
      }
      var ts = chart.timeScale();
      var color = document.documentElement.getAttribute('data-theme') === 'light'
        ? 'rgba(90, 100, 120, 0.55)' : 'rgba(178, 181, 190, 0.45)';
      target.useBitmapCoordinateSpace(function (scope) {
        var ctx = scope.context;
        var h = scope.horizontalPixelRatio;
        var drawn = 0;
        var width = scope.bitmapSize.width;
        ctx.save();
        ctx.strokeStyle = color;
        ctx.lineWidth = Math.max(1, Math.round(h));
        ctx.setLineDash([4 * h, 4 * h]);
        starts.forEach(function (i) {
          var x = logicalX(ts, i - 0.5);
          if (x === null) return;
          var px = Math.round(x * h) + 0.5;
          if (px < 0 || px > width) return;
          ctx.beginPath();
          ctx.moveTo(px, 0);
          ctx.lineTo(px, scope.bitmapSize.height);
          ctx.stroke();
          drawn += 1;
        });
        ctx.restore();
        api.breaksDrawn = drawn;
      });
    },
  };
  var paneView = { zOrder: function () { return 'bottom'; }, renderer: function () { return renderer; } };
  var primitive = {
    attached: function (param) {
      chart = param.chart;
      requestUpdate = param.requestUpdate;
    },
    detached: function () {
      chart = null;
      requestUpdate = null;
    },
    updateAllViews: function () {},
    paneViews: function () { return [paneView]; },
  };

  function reattach() {
    var s = view.series();
    if (!s || s === attachedTo) return;
    if (attachedTo) {
      try { attachedTo.detachPrimitive(primitive); } catch (e) { /* removed with its series */ }
    }
    s.attachPrimitive(primitive);
    attachedTo = s;
  }

  view.onBars(function (kind) {
    if (kind === 'series') reattach();
    if (kind !== 'live' || view.bars.length !== counted) recompute(); // a live tick adds no break
  });
  reattach();
  recompute();

  return {
    show: function (yes) {
      on = !!yes;
      api.sessionBreaksOn = on;
      recompute();
    },
    shown: function () { return on; },
    recompute: recompute,
  };
}

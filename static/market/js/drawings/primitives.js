/*
 * Drawings (issue 12) on the chart: one lightweight-charts v5 series primitive
 * (ISeriesPrimitive: attached/detached/updateAllViews/paneViews/hitTest) on the price
 * series that draws every drawing on the pane's canvas in bitmap coordinates
 * (target.useBitmapCoordinateSpace), and answers where each drawing's points are in
 * pixels (project) for the mouse (tools.js).
 *
 * state(): {drawings: [{id, kind, points, style}], selected: id or null, bars (the shown
 * bars, ascending), seconds (the timeframe's length)}.
 */
import { FIB_LEVELS, fibPrice, hit, timeToLogical } from './geometry.js';

var FONT_PX = 12;

function rgba(hex, alpha) {
  var n = parseInt(String(hex).slice(1), 16);
  return 'rgba(' + ((n >> 16) & 255) + ', ' + ((n >> 8) & 255) + ', ' + (n & 255) + ', ' + alpha + ')';
}

// The x of a fractional logical index: lightweight-charts maps whole indexes only.
export function logicalX(ts, logical) {
  var i = Math.floor(logical);
  var c0 = ts.logicalToCoordinate(i);
  var c1 = ts.logicalToCoordinate(i + 1);
  if (c0 === null || c1 === null || c0 === undefined || c1 === undefined) return null;
  return c0 + (logical - i) * (c1 - c0);
}

// The fractional logical index at x (coordinateToLogical rounds to a whole bar).
export function logicalAt(ts, x) {
  var i = ts.coordinateToLogical(x);
  if (i === null || i === undefined) return null;
  var c0 = ts.logicalToCoordinate(i);
  var c1 = ts.logicalToCoordinate(i + 1);
  if (c0 === null || c1 === null || c1 === c0) return i;
  return i + (x - c0) / (c1 - c0);
}

export function createPrimitive(state) {
  var chart = null;
  var series = null;
  var requestUpdate = null;
  var textWidths = {}; // id -> measured width in media pixels (hit testing text notes)

  function x(time, st) {
    var logical = timeToLogical(st.bars, st.seconds, time);
    if (logical === null) return null;
    return logicalX(chart.timeScale(), logical);
  }

  function y(price) {
    var c = series.priceToCoordinate(price);
    return c === null || c === undefined ? null : c;
  }

  // The drawing's points in media pixels.
  function project(d, st) {
    st = st || state();
    return d.points.map(function (p) { return { x: x(p.time, st), y: y(p.price) }; });
  }

  function backdrop() {
    var bg = chart.options().layout.background;
    var color = bg && bg.color && /^#[0-9a-f]{6}$/i.test(bg.color) ? bg.color : '#131722';
    return rgba(color, 0.85);
  }

  function paneWidth() {
    return chart ? chart.timeScale().width() : 0;
  }

  function drawOne(ctx, d, st, h, v, selected) {
    var xy = project(d, st);
    if (xy.some(function (p) { return p.y === null; })) return;
    var width = paneWidth();
    var lw = Math.max(1, Math.round(d.style.width * h));
    ctx.strokeStyle = d.style.color;
    ctx.fillStyle = d.style.color;
    ctx.lineWidth = lw;
    ctx.setLineDash([]);
    var p = xy[0];
    var q = xy[1];
    function line(x1, y1, x2, y2) {
      ctx.beginPath();
      ctx.moveTo(Math.round(x1 * h), Math.round(y1 * v));
      ctx.lineTo(Math.round(x2 * h), Math.round(y2 * v));
      ctx.stroke();
    }
    // Text on a translucent patch of the chart's background, so candles do not hide it.
    function label(text, lx, ly) {
      ctx.font = Math.round(FONT_PX * v) + 'px -apple-system, "Segoe UI", Roboto, sans-serif';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'bottom';
      var w = ctx.measureText(text).width;
      var fill = ctx.fillStyle;
      ctx.fillStyle = backdrop();
      ctx.fillRect(Math.round(lx * h) - 2 * h, Math.round((ly - FONT_PX - 2) * v), w + 4 * h, (FONT_PX + 3) * v);
      ctx.fillStyle = fill;
      ctx.fillText(text, Math.round(lx * h), Math.round(ly * v));
      return w / h;
    }
    if (d.kind === 'hline') {
      line(0, p.y, width, p.y);
    } else if (d.kind === 'hray') {
      if (p.x === null) return;
      line(p.x, p.y, width, p.y);
    } else if (d.kind === 'text') {
      if (p.x === null) return;
      ctx.beginPath();
      ctx.arc(p.x * h, p.y * v, 2.5 * h, 0, 2 * Math.PI);
      ctx.fill();
      textWidths[d.id] = label(String(d.style.text || ''), p.x + 4, p.y - 2);
    } else {
      if (p.x === null || q.x === null || q.y === null) return;
      if (d.kind === 'trend') {
        line(p.x, p.y, q.x, q.y);
      } else if (d.kind === 'ray') {
        var dx = q.x - p.x;
        var dy = q.y - p.y;
        var len = Math.hypot(dx, dy) || 1;
        var far = 4 * (width + 1000);
        line(p.x, p.y, p.x + (dx / len) * far, p.y + (dy / len) * far);
      } else if (d.kind === 'rect') {
        var left = Math.min(p.x, q.x);
        var top = Math.min(p.y, q.y);
        ctx.fillStyle = rgba(d.style.color, 0.15);
        ctx.fillRect(Math.round(left * h), Math.round(top * v), Math.round(Math.abs(q.x - p.x) * h),
          Math.round(Math.abs(q.y - p.y) * v));
        ctx.strokeRect(Math.round(left * h), Math.round(top * v), Math.round(Math.abs(q.x - p.x) * h),
          Math.round(Math.abs(q.y - p.y) * v));
      } else if (d.kind === 'fib') {
        var x1 = Math.min(p.x, q.x);
        var x2 = Math.max(p.x, q.x);
        ctx.setLineDash([4 * h, 4 * h]);
        line(p.x, p.y, q.x, q.y);
        ctx.setLineDash([]);
        FIB_LEVELS.forEach(function (level) {
          var price = fibPrice(d.points, level);
          var ly = y(price);
          if (ly === null) return;
          line(x1, ly, x2, ly);
          label(level + ' (' + (series.priceFormatter ? series.priceFormatter().format(price) : price.toFixed(2)) + ')',
            x1 + 2, ly - 1);
        });
      }
    }
    if (selected) {
      xy.forEach(function (a) {
        if (a.x === null || a.y === null) return;
        ctx.beginPath();
        ctx.arc(a.x * h, a.y * v, 4.5 * h, 0, 2 * Math.PI);
        ctx.fillStyle = '#ffffff';
        ctx.fill();
        ctx.lineWidth = Math.max(1, Math.round(1.5 * h));
        ctx.strokeStyle = d.style.color;
        ctx.stroke();
      });
    }
  }

  var renderer = {
    draw: function (target) {
      if (!chart || !series) return;
      var st = state();
      target.useBitmapCoordinateSpace(function (scope) {
        var ctx = scope.context;
        ctx.save();
        st.drawings.forEach(function (d) {
          drawOne(ctx, d, st, scope.horizontalPixelRatio, scope.verticalPixelRatio, d.id === st.selected);
        });
        ctx.restore();
      });
    },
  };
  var paneView = {
    zOrder: function () { return 'top'; },
    renderer: function () { return renderer; },
  };

  // What is at (px, py) in media pixels: {drawing, part, anchor?}, the newest drawing first.
  function hitAt(px, py) {
    if (!chart || !series) return null;
    var st = state();
    for (var i = st.drawings.length - 1; i >= 0; i--) {
      var d = st.drawings[i];
      var found = hit(d, project(d, st), px, py, { width: paneWidth(), textWidth: textWidths[d.id] });
      if (found) {
        found.drawing = d;
        return found;
      }
    }
    return null;
  }

  return {
    attached: function (param) {
      chart = param.chart;
      series = param.series;
      requestUpdate = param.requestUpdate;
    },
    detached: function () {
      chart = null;
      series = null;
      requestUpdate = null;
    },
    updateAllViews: function () {},
    paneViews: function () { return [paneView]; },
    // The chart asks this for the cursor: a drawing under the mouse can be moved.
    hitTest: function (px, py) {
      var found = hitAt(px, py);
      if (!found) return null;
      return { cursorStyle: found.part === 'anchor' ? 'pointer' : 'move', externalId: String(found.drawing.id),
        zOrder: 'top' };
    },
    redraw: function () { if (requestUpdate) requestUpdate(); },
    hitAt: hitAt,
    project: project,
  };
}

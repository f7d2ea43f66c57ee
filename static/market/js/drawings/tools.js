/*
 * Drawing with the mouse (issue 12): put a tool's points down by clicking (two-point tools
 * show a preview between the clicks), select a drawing by clicking it (the primitive's hit
 * test), drag it or one of its anchors, and the keyboard: Escape cancels the tool (or the
 * selection), Delete/Backspace removes the selected drawing.
 *
 * Mouse events are caught on the chart element in the capture phase, before
 * lightweight-charts sees them, only when they are ours (a tool is active, or the press is
 * on a drawing); otherwise the chart pans and zooms as usual.
 *
 * ctx: {chart, view, primitive, store, state (the shared draw state: tool, selected,
 * preview, magnet), style() (the style of a new drawing), changed() (redraw + publish)}.
 */
import { barAt, logicalToTime, POINTS, tfSeconds, timeToLogical } from './geometry.js';
import { logicalAt } from './primitives.js';

var DRAG_THRESHOLD = 3; // pixels before a press on a drawing becomes a move

export function createTools(chartEl, ctx) {
  var state = ctx.state;
  var drag = null; // {id, anchor (-1: whole), start {logical, price}, orig [{logical, price}], moved}

  function seconds() {
    return tfSeconds(ctx.view.tf);
  }

  // Mouse position in the price pane's media pixels; null outside it (axes, volume pane).
  function local(e) {
    var rect = chartEl.getBoundingClientRect();
    var x = e.clientX - rect.left;
    var y = e.clientY - rect.top;
    var ts = ctx.chart.timeScale();
    var pane = ctx.chart.panes()[0];
    var height = pane && pane.getHeight ? pane.getHeight() : rect.height;
    if (x < 0 || y < 0 || x > ts.width() || y > height) return null;
    return { x: x, y: y };
  }

  function series() {
    return ctx.view.series();
  }

  // The chart point under the mouse: {time, price, logical}; the magnet snaps the price to
  // the nearest open, high, low or close of the bar under the mouse.
  function pointAt(pos) {
    var logical = logicalAt(ctx.chart.timeScale(), pos.x);
    var price = series().coordinateToPrice(pos.y);
    if (logical === null || price === null) return null;
    if (state.magnet) {
      var bar = barAt(ctx.view.bars, logical);
      if (bar) {
        var best = null;
        [bar.open, bar.high, bar.low, bar.close].forEach(function (v) {
          var yv = series().priceToCoordinate(v);
          var dist = yv === null ? Infinity : Math.abs(yv - pos.y);
          if (best === null || dist < best.dist) best = { v: v, dist: dist };
        });
        price = best.v;
      }
    }
    return { time: logicalToTime(ctx.view.bars, seconds(), logical), price: price, logical: logical };
  }

  function plain(p) {
    return { time: p.time, price: p.price };
  }

  function setTool(kind) {
    state.tool = kind || null;
    state.preview = null;
    if (kind) state.selected = null;
    ctx.changed();
  }

  function finish(points) {
    var kind = state.tool;
    state.tool = null;
    state.preview = null;
    var d = ctx.store.create({ kind: kind, points: points.map(plain), style: ctx.style(kind) });
    state.selected = d.id;
    ctx.changed();
  }

  function ours(e) {
    e.preventDefault();
    e.stopPropagation();
  }

  function onDown(e) {
    if (e.button !== undefined && e.button !== 0) return;
    var pos = local(e);
    if (!pos) return;
    if (state.tool) {
      ours(e);
      var p = pointAt(pos);
      if (!p) return;
      var need = POINTS[state.tool];
      var have = state.preview ? state.preview.points.slice(0, -1) : [];
      var points = have.concat([plain(p)]);
      if (points.length >= need) {
        finish(points);
      } else {
        state.preview = { id: '__preview', kind: state.tool, points: points.concat([plain(p)]), style: ctx.style(state.tool) };
        ctx.changed();
      }
      return;
    }
    var found = ctx.primitive.hitAt(pos.x, pos.y);
    if (!found) {
      if (state.selected !== null) {
        state.selected = null;
        ctx.changed();
      }
      return;
    }
    ours(e);
    var d = found.drawing;
    state.selected = d.id;
    var start = pointAt(pos);
    var bars = ctx.view.bars;
    drag = {
      id: d.id,
      anchor: found.part === 'anchor' ? found.anchor : -1,
      x: pos.x,
      y: pos.y,
      start: start,
      orig: d.points.map(function (pt) {
        return { time: pt.time, price: pt.price, logical: timeToLogical(bars, seconds(), pt.time) };
      }),
      moved: false,
    };
    if (!bars.length || !start) {
      drag = null;
      ctx.changed();
      return;
    }
    ctx.chart.applyOptions({ handleScroll: false, handleScale: false });
    ctx.changed();
  }

  function onMove(e) {
    var pos;
    if (drag) {
      var rect = chartEl.getBoundingClientRect();
      pos = { x: e.clientX - rect.left, y: e.clientY - rect.top };
      if (!drag.moved && Math.hypot(pos.x - drag.x, pos.y - drag.y) < DRAG_THRESHOLD) return;
      drag.moved = true;
      var d = ctx.store.get(drag.id);
      var now = pointAt(pos);
      if (!d || !now || !drag.start) return;
      if (drag.anchor >= 0) {
        d.points = d.points.map(function (pt, i) { return i === drag.anchor ? plain(now) : pt; });
      } else {
        var dl = now.logical - drag.start.logical;
        var dp = now.price - drag.start.price;
        d.points = drag.orig.map(function (o) {
          var time = o.logical === null ? o.time : logicalToTime(ctx.view.bars, seconds(), o.logical + dl);
          return { time: time, price: o.price + dp };
        });
      }
      ctx.changed();
      return;
    }
    if (state.tool && state.preview) {
      pos = local(e);
      var p = pos && pointAt(pos);
      if (!p) return;
      state.preview.points[state.preview.points.length - 1] = plain(p);
      ctx.changed();
    }
  }

  function onUp() {
    if (!drag) return;
    var done = drag;
    drag = null;
    ctx.chart.applyOptions({ handleScroll: true, handleScale: true });
    var d = ctx.store.get(done.id);
    if (done.moved && d) ctx.store.update(done.id, { points: d.points });
  }

  function editing(e) {
    var tag = (e.target && e.target.tagName) || '';
    return tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || (e.target && e.target.isContentEditable);
  }

  function onKey(e) {
    if (e.key === 'Escape') {
      if (state.tool) setTool(null);
      else if (state.selected !== null && !editing(e)) {
        state.selected = null;
        ctx.changed();
      }
      return;
    }
    if ((e.key === 'Delete' || e.key === 'Backspace') && !editing(e) && state.selected !== null) {
      e.preventDefault();
      removeSelected();
    }
  }

  function removeSelected() {
    if (state.selected === null) return;
    var id = state.selected;
    state.selected = null;
    ctx.store.remove(id);
    ctx.changed();
  }

  ['mousedown', 'touchstart'].forEach(function (type) {
    chartEl.addEventListener(type, function (e) {
      if (type === 'touchstart') {
        var t = e.touches && e.touches[0];
        if (!t) return;
        onDown({ clientX: t.clientX, clientY: t.clientY, preventDefault: function () { e.preventDefault(); },
          stopPropagation: function () { e.stopPropagation(); } });
        return;
      }
      onDown(e);
    }, { capture: true, passive: false });
  });
  window.addEventListener('mousemove', onMove);
  window.addEventListener('mouseup', onUp);
  window.addEventListener('touchmove', function (e) {
    var t = e.touches && e.touches[0];
    if (t && (drag || state.preview)) onMove({ clientX: t.clientX, clientY: t.clientY });
  }, { passive: true });
  window.addEventListener('touchend', onUp);
  document.addEventListener('keydown', onKey);

  return { setTool: setTool, removeSelected: removeSelected, dragging: function () { return drag !== null; } };
}

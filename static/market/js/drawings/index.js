/*
 * Drawings on the chart (issue 12): wires the store (server or localStorage), the series
 * primitive that draws them, the mouse and keyboard tools and the toolbar. main.js calls
 * createDrawings once, reattach() when the price series is replaced (chart type), and
 * socket.js hands it `drawing` frames (onFrame).
 *
 * For tests: window.tickchart.drawings ([{id, kind, points, style}], oldest first),
 * drawingsMode ('server' | 'local'), drawingsLoaded, drawingsSaved (finished server
 * writes), drawingsError, drawingPixels(id); the toolbar's data-* attributes.
 */
import { createPrimitive } from './primitives.js';
import { createStore } from './store.js';
import { createToolbar } from './toolbar.js';
import { createTools } from './tools.js';
import { tfSeconds } from './geometry.js';

// els (optional; a layout's pane): {bar, note (null: none), signedIn}; default: the chart
// page's #draw-bar and #draw-note, signed in as the bar says.
export function createDrawings(view, chartEl, api, els) {
  var bar = els ? els.bar : document.getElementById('draw-bar');
  var note = els ? els.note : document.getElementById('draw-note');
  var state = { tool: null, selected: null, preview: null, magnet: false };
  var signedIn = els ? !!els.signedIn : !!bar && bar.getAttribute('data-signed-in') === 'true';
  api.drawings = [];
  api.drawingsLoaded = false;
  api.drawingsSaved = 0;
  api.drawingsError = null;

  var store = createStore({
    symbol: view.symbol,
    server: signedIn,
    changed: function () { changed(); },
    saved: function () { api.drawingsSaved += 1; },
    renamed: function (from, to) {
      if (state.selected === from) state.selected = to;
    },
    failed: function (message) {
      api.drawingsError = message;
      console.warn('tickchart: ' + message);
      if (note) {
        note.textContent = message;
        note.hidden = false;
      }
    },
  });

  var primitive = createPrimitive(function () {
    var list = store.items();
    return {
      drawings: state.preview ? list.concat([state.preview]) : list,
      selected: state.selected,
      bars: view.bars,
      seconds: tfSeconds(view.tf),
    };
  });
  var attachedTo = null;
  function reattach() {
    var s = view.series();
    if (!s || s === attachedTo) return; // no series before the chart type is first set
    if (attachedTo) {
      try { attachedTo.detachPrimitive(primitive); } catch (e) { /* removed with its series */ }
    }
    s.attachPrimitive(primitive);
    attachedTo = s;
  }

  function selected() {
    return state.selected === null ? null : store.get(state.selected);
  }

  var toolbar = bar ? createToolbar(bar, {
    tool: function (kind) { tools.setTool(kind); },
    magnet: function (on) {
      state.magnet = on;
      changed();
    },
    color: function (hex) {
      var d = selected();
      if (d) store.update(d.id, { style: { color: hex } });
    },
    text: function (text) {
      var d = selected();
      if (d && d.kind === 'text' && text.trim()) store.update(d.id, { style: { text: text } });
    },
    remove: function () { tools.removeSelected(); },
  }) : null;

  function style(kind) {
    return { color: toolbar ? toolbar.color() : '#2962ff', width: 2, text: kind === 'text' && toolbar ? toolbar.text() : '' };
  }

  function changed() {
    if (state.selected !== null && !store.get(state.selected)) state.selected = null;
    api.drawings = store.items().map(function (d) {
      return { id: d.id, kind: d.kind, points: d.points.map(function (p) { return { time: p.time, price: p.price }; }),
        style: { color: d.style.color, width: d.style.width, text: d.style.text } };
    });
    if (toolbar) toolbar.render({ tool: state.tool, selected: selected(), magnet: state.magnet, mode: store.mode() });
    primitive.redraw();
  }

  var tools = createTools(chartEl, {
    chart: view.chart,
    view: view,
    primitive: primitive,
    store: store,
    state: state,
    style: style,
    changed: changed,
  });

  // Tests: where drawing `id`'s points are on the pane now, in CSS pixels ([{x, y}]).
  api.drawingPixels = function (id) {
    var d = store.get(id);
    return d ? primitive.project(d) : null;
  };

  reattach();
  api.drawingsMode = store.mode();
  if (note && !signedIn) note.hidden = false;
  store.load().then(function () { api.drawingsLoaded = true; });

  return {
    reattach: function () {
      reattach();
      primitive.redraw();
    },
    onFrame: store.apply,
    reload: function () { return store.load(); },
    // Hidden, or the chart goes away: off the series, and nothing stays selected or armed
    // (the tools' window and document listeners outlive it and act on the selection).
    detach: function () {
      state.tool = null;
      state.selected = null;
      state.preview = null;
      if (attachedTo) {
        try { attachedTo.detachPrimitive(primitive); } catch (e) { /* removed with its series */ }
        attachedTo = null;
      }
    },
  };
}

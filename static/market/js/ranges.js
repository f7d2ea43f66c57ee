/*
 * The range buttons (1D 5D 1M All): the one last chosen is pressed (aria-pressed), and a
 * button whose range could show no more than the next shorter one is disabled and says
 * why. Young history (a fresh install has three hours) would otherwise make them all
 * show the same thing. How far back the history goes is config.history_start (the
 * oldest stored candle of each timeframe) or the oldest bar shown, whichever is older.
 * Loading and showing a range is history.js's (showRange).
 */

// Seconds each range covers (null: all of it), as history.js's showRange reads them.
export var RANGE_SECONDS = { '1D': 86400, '5D': 5 * 86400, '1M': 31 * 86400, All: null };

function describe(seconds) {
  if (seconds < 3600) return Math.max(1, Math.round(seconds / 60)) + ' min';
  if (seconds < 2 * 86400) return Math.round(seconds / 3600) + ' h';
  return Math.round(seconds / 86400) + ' days';
}

// buttons: the [data-range] buttons, shortest first; view: the chart view;
// showRange(code): history.js's.
export function createRanges(buttons, config, view, showRange) {
  var starts = config.history_start || {};
  var active = null;
  var activeTf = view.tf;
  var list = Array.prototype.slice.call(buttons);

  // How many seconds of history the shown timeframe has (null: unknown yet).
  function historySeconds() {
    var last = view.lastBar();
    if (!last) return null;
    var first = starts[view.tf];
    if (typeof first !== 'number' || (view.bars.length && view.bars[0].time < first)) first = view.bars[0].time;
    return last.time - first;
  }

  function set(b, name, value) {
    if (value === null) {
      if (b.hasAttribute(name)) b.removeAttribute(name);
    } else if (b.getAttribute(name) !== value) {
      b.setAttribute(name, value);
    }
  }

  function update() {
    if (view.tf !== activeTf) { // another timeframe: nothing chosen on it yet
      activeTf = view.tf;
      active = null;
    }
    var length = historySeconds();
    var shorter = null; // the next shorter range: its code and span
    list.forEach(function (b) {
      var code = b.getAttribute('data-range');
      var span = RANGE_SECONDS[code];
      var same = shorter !== null && length !== null && length <= shorter.span;
      set(b, 'disabled', same ? '' : null);
      set(b, 'title', same ? 'Only ' + describe(length) + ' of history: ' + shorter.code + ' shows all of it' : null);
      set(b, 'aria-pressed', code === active ? 'true' : 'false');
      if (!same) shorter = { code: code, span: span === null ? Infinity : span };
    });
  }

  list.forEach(function (b) {
    b.addEventListener('click', function () {
      active = b.getAttribute('data-range');
      update();
      showRange(active);
    });
  });

  return { update: update };
}

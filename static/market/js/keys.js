/*
 * Keyboard shortcuts of a page's charts (issue 12). Typing a timeframe and Enter switches
 * the active chart to it: `5` → 5m, `15` → 15m, `1h`, `4h`, `1d`, `30s` (digits, then
 * s/m/h/d; minutes without a unit), shown as typed; Escape or 3 s without a key drops it.
 * The chart tools: Alt+G go to date, Alt+L log scale, Alt+P percent scale, Alt+B session
 * breaks, Alt+Z full screen, Alt+E CSV of the visible candles, Alt+S PNG of the chart (the
 * drawing tools keep theirs, drawings/toolbar.js). Keys typed into a field are its own.
 *
 * opts: {timeframes (the codes there are), target() ({setTimeframe(tf), toolbox}: the
 * active chart), api (window.tickchart: api.typed, the text being typed)}.
 */
var TOOL_KEYS = {
  KeyG: function (t) { t.openGoto(); },
  KeyL: function (t) { t.toggleScale('log'); },
  KeyP: function (t) { t.toggleScale('percent'); },
  KeyB: function (t) { t.toggleBreaks(); },
  KeyZ: function (t) { t.toggleFull(); },
  KeyE: function (t) { t.exportCsv(); },
  KeyS: function (t) { t.exportPng(); },
};
var DROP_MS = 3000;

// The timeframe code typed (`5` → 5m, `1H` → 1h), or null when it is not one.
export function typedTimeframe(text, timeframes) {
  var m = /^(\d{1,3})([smhd]?)$/i.exec(String(text || '').trim());
  if (!m) return null;
  var code = String(Number(m[1])) + (m[2] ? m[2].toLowerCase() : 'm');
  return timeframes.indexOf(code) >= 0 ? code : null;
}

function inField(e) {
  var t = e.target;
  if (!t || !t.closest) return false;
  return !!t.closest('input, select, textarea, [contenteditable], dialog');
}

export function createKeys(opts) {
  var api = opts.api;
  var typed = '';
  var timer = null;
  var shown = document.createElement('div');
  shown.className = 'tf-typed';
  shown.setAttribute('role', 'status');
  shown.setAttribute('aria-live', 'polite');
  shown.setAttribute('aria-label', 'Typed shortcut');
  shown.hidden = true;
  document.body.appendChild(shown);

  function show(text, bad) {
    shown.textContent = text;
    shown.hidden = !text;
    shown.classList.toggle('bad', !!bad);
    api.typed = typed;
  }

  function drop() {
    typed = '';
    if (timer !== null) window.clearTimeout(timer);
    timer = null;
    show('');
  }

  function later(ms) {
    if (timer !== null) window.clearTimeout(timer);
    timer = window.setTimeout(drop, ms);
  }

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || inField(e)) return;
    var target = opts.target();
    if (!target) return;
    if (e.altKey) {
      var tool = TOOL_KEYS[e.code];
      if (tool && target.toolbox) {
        e.preventDefault();
        tool(target.toolbox);
      }
      return;
    }
    if (typed && e.key === 'Escape') {
      e.preventDefault();
      drop();
    } else if (typed && e.key === 'Backspace') {
      e.preventDefault();
      typed = typed.slice(0, -1);
      show(typed);
      later(DROP_MS);
    } else if (typed && e.key === 'Enter') {
      e.preventDefault();
      var tf = typedTimeframe(typed, opts.timeframes);
      if (tf) {
        drop();
        target.setTimeframe(tf);
      } else {
        show(typed + ': not a timeframe', true);
        typed = '';
        api.typed = '';
        later(1500);
      }
    } else if (e.key.length === 1 && (/\d/.test(e.key) || (typed && /^[smhd]$/i.test(e.key))) && typed.length < 4) {
      e.preventDefault();
      typed += e.key;
      show(typed);
      later(DROP_MS);
    }
  });

  return { typed: function () { return typed; }, drop: drop };
}

/*
 * The chart's tools (issue 12), one set per chart (the chart page's, each layout pane's),
 * built into `container`: price scale (normal, log, percent), compare symbols, go to a date
 * (exchange time), session breaks, full screen, and the exports: the visible candles as
 * CSV and the chart as PNG (lightweight-charts' takeScreenshot). keys.js gives them
 * shortcuts (Alt+G, Alt+L, Alt+P, Alt+B, Alt+Z, Alt+E, Alt+S).
 *
 * ctx: {view, api, history (history.js: goTo), compare (compare.js), breaks (breaks.js),
 * fullscreenEl (what full screen shows), suffix (appended to every accessible name: " of
 * chart 2" on a layout), scale(mode) and compared(symbols) (after the user changed them),
 * note(text)}. api.exported: {kind, name, size, text (CSV)} of the last export.
 */
import { parseSymbols } from './compare.js';
import { fromLocal, isDaily, localDate, localStamp } from './time.js';

function el(tag, attrs, text) {
  var e = document.createElement(tag);
  for (var k in attrs) e.setAttribute(k, attrs[k]);
  if (text) e.textContent = text;
  return e;
}

function fileName(view, ext) {
  return view.symbol.replace(/[^A-Za-z0-9_-]+/g, '-') + '_' + view.tf + '.' + ext;
}

// Saves `blob` as a download named `name` (a blob: URL, no server round trip).
function download(blob, name) {
  var url = URL.createObjectURL(blob);
  var a = el('a', { href: url, download: name, hidden: '' });
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
}

// The CSV of `bars` (time: epoch seconds; local: exchange-local time, `zone`).
export function candlesCsv(bars, zone) {
  var lines = ['time,local_time,open,high,low,close,volume'];
  bars.forEach(function (b) {
    lines.push([b.time, localStamp(b.time, zone), b.open, b.high, b.low, b.close, b.volume].join(','));
  });
  return lines.join('\n') + '\n';
}

export function createToolbox(container, ctx) {
  var view = ctx.view;
  var api = ctx.api;
  var sfx = ctx.suffix || '';
  var note = ctx.note || function () {};

  var scaleSelect = el('select', { class: 'tool-scale', 'aria-label': 'Price scale' + sfx, title: 'Price scale (Alt+L log, Alt+P percent)' });
  [['normal', 'Lin'], ['log', 'Log'], ['percent', '%']].forEach(function (o) {
    scaleSelect.appendChild(el('option', { value: o[0] }, o[1]));
  });
  var compareInput = el('input', { class: 'tool-compare', type: 'text', autocomplete: 'off', spellcheck: 'false',
    placeholder: '+ compare', title: 'Compare: other symbols on a percent scale (e.g. DEMO:BETA, DEMO:GAMMA)',
    'aria-label': 'Compare symbols' + sfx + ' (comma-separated tickers)' });
  var gotoBtn = el('button', { type: 'button', class: 'tool-btn tool-goto', 'aria-label': 'Go to date' + sfx,
    'aria-expanded': 'false', title: 'Go to a date (Alt+G)' }, '⇢');
  var form = el('form', { class: 'goto-form', hidden: '', novalidate: '' });
  var dateInput = el('input', { type: 'date', class: 'goto-date', 'aria-label': 'Date to go to' + sfx + ' (exchange time)', required: '' });
  var timeInput = el('input', { type: 'time', class: 'goto-time', 'aria-label': 'Time to go to' + sfx + ' (exchange time)' });
  var goBtn = el('button', { type: 'submit', class: 'tool-btn', 'aria-label': 'Go' + sfx }, 'Go');
  form.appendChild(dateInput);
  form.appendChild(timeInput);
  form.appendChild(goBtn);
  var breaksBtn = el('button', { type: 'button', class: 'tool-btn tool-breaks', 'aria-pressed': 'true',
    'aria-label': 'Session breaks' + sfx, title: 'Session breaks (Alt+B)' }, '┆');
  var fullBtn = el('button', { type: 'button', class: 'tool-btn tool-fullscreen', 'aria-pressed': 'false',
    'aria-label': 'Full screen' + sfx, title: 'Full screen (Alt+Z)' }, '⤢');
  var csvBtn = el('button', { type: 'button', class: 'tool-btn tool-csv', 'aria-label': 'Export visible candles as CSV' + sfx,
    title: 'Export the visible candles as CSV (Alt+E)' }, 'CSV');
  var pngBtn = el('button', { type: 'button', class: 'tool-btn tool-png', 'aria-label': 'Export chart as PNG' + sfx,
    title: 'Export the chart as PNG (Alt+S)' }, 'PNG');
  [scaleSelect, compareInput, gotoBtn, form, breaksBtn, fullBtn, csvBtn, pngBtn].forEach(function (c) {
    container.appendChild(c);
  });

  // ---- scale and compare
  function showScale() {
    scaleSelect.value = view.scale();
  }
  function setScale(mode, byUser) {
    view.setScale(mode);
    showScale();
    if (byUser && ctx.scale) ctx.scale(view.scale());
  }
  scaleSelect.addEventListener('change', function () { setScale(scaleSelect.value, true); });

  function setCompare(symbols, byUser) {
    var before = view.scale();
    compareInput.value = symbols.join(',');
    var done = ctx.compare.setSymbols(symbols);
    showScale();
    if (byUser && ctx.compared) ctx.compared(symbols);
    if (byUser && before !== view.scale() && ctx.scale) ctx.scale(view.scale());
    return done;
  }
  compareInput.addEventListener('change', function () {
    setCompare(parseSymbols(compareInput.value, view.symbol), true);
  });

  // ---- go to a date
  function zone() {
    return isDaily(view.tf) ? 'UTC' : view.tz || 'UTC';
  }
  function openGoto() {
    form.hidden = !form.hidden;
    gotoBtn.setAttribute('aria-expanded', form.hidden ? 'false' : 'true');
    if (!form.hidden) {
      var last = view.lastBar();
      if (!dateInput.value && last) dateInput.value = localDate(last.time, zone());
      dateInput.focus();
    }
  }
  gotoBtn.addEventListener('click', openGoto);
  function goTo(date, time) {
    var t = fromLocal(date, time || '', zone());
    if (t === null) {
      note('Go to: give a date (and a time, HH:MM)');
      return Promise.resolve(null);
    }
    return ctx.history.goTo(t).then(function (shown) {
      note(shown === null ? 'Go to: no history at ' + date + ' ' + (time || '') : '');
      return shown;
    });
  }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    goTo(dateInput.value, timeInput.value).then(function (shown) {
      if (shown !== null) {
        form.hidden = true;
        gotoBtn.setAttribute('aria-expanded', 'false');
      }
    });
  });

  // ---- session breaks
  function showBreaks(on) {
    ctx.breaks.show(on);
    breaksBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
  }
  breaksBtn.addEventListener('click', function () { showBreaks(!ctx.breaks.shown()); });

  // ---- full screen (the Fullscreen API; a fixed overlay where it is refused)
  var target = ctx.fullscreenEl;
  function isFull() {
    return document.fullscreenElement === target || target.classList.contains('is-fullscreen');
  }
  function showFull() {
    var on = isFull();
    fullBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
    api.fullscreen = on;
  }
  var listening = new AbortController(); // the document's listeners go with this chart (destroy)
  document.addEventListener('fullscreenchange', showFull, { signal: listening.signal });
  function toggleFull() {
    if (isFull()) {
      target.classList.remove('is-fullscreen');
      if (document.fullscreenElement === target) return document.exitFullscreen().then(showFull, showFull);
      showFull();
      return Promise.resolve();
    }
    var ask = target.requestFullscreen ? target.requestFullscreen() : Promise.reject(new Error('no Fullscreen API'));
    return ask.then(showFull, function () {
      target.classList.add('is-fullscreen');
      showFull();
    });
  }
  fullBtn.addEventListener('click', toggleFull);
  document.addEventListener('keydown', function (e) { // the browser leaves its own full screen on Escape
    if (e.key === 'Escape' && target.classList.contains('is-fullscreen')) toggleFull();
  }, { signal: listening.signal });

  // ---- exports
  function visibleBars() {
    var shown = view.visibleIndexes();
    return shown ? view.bars.slice(shown.from, shown.to + 1) : [];
  }
  function exportCsv() {
    var text = candlesCsv(visibleBars(), zone());
    var name = fileName(view, 'csv');
    download(new Blob([text], { type: 'text/csv' }), name);
    api.exported = { kind: 'csv', name: name, size: text.length, text: text };
  }
  function exportPng() {
    var canvas = view.chart.takeScreenshot();
    var name = fileName(view, 'png');
    return new Promise(function (resolve) {
      canvas.toBlob(function (blob) {
        download(blob, name);
        api.exported = { kind: 'png', name: name, size: blob.size, width: canvas.width, height: canvas.height };
        resolve();
      }, 'image/png');
    });
  }
  csvBtn.addEventListener('click', exportCsv);
  pngBtn.addEventListener('click', exportPng);

  showScale();
  return {
    setScale: setScale,
    toggleScale: function (mode) { setScale(view.scale() === mode ? 'normal' : mode, true); },
    setCompare: setCompare,
    openGoto: openGoto,
    goTo: goTo,
    showBreaks: showBreaks,
    toggleBreaks: function () { showBreaks(!ctx.breaks.shown()); },
    toggleFull: toggleFull,
    exportCsv: exportCsv,
    exportPng: exportPng,
    destroy: function () { listening.abort(); },
  };
}

/*
 * The "Indicators" menu of the chart page and what the chosen studies are: add a study,
 * edit its parameters, remove it; the choice is kept per symbol in localStorage and in the
 * URL (?studies=ema:20,rsi:14; the URL wins). Also the study legend under the bar legend
 * (each study's value at the crosshair, the newest bar's without one) and the note that
 * names keys that were ignored (unknown, malformed or refused by the server).
 *
 * Values come from GET /api/candles?studies=... for the shown bars (history.getPage) and,
 * live, from the socket's frames (static/market/js/socket.js calls studies.merge/applyLive).
 */
import { indexOfTime } from './candles.js';
import { labelOf, MAX_STUDIES, normalizeKey, paramsOf, parseKeys, SPECS, specOf } from './studies.js';
import { replaceUrl, storageGet, storageSet } from './storage.js';

var MAX_LIMIT = 10000; // the API's largest page

function storageKey(symbol) {
  return 'tickchart.studies.' + symbol;
}

function el(tag, attrs, text) {
  var e = document.createElement(tag);
  for (var k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

// studies: createStudies(...); history: createHistory(...); api: window.tickchart;
// resubscribe(): the socket subscribes again (with the new studies).
export function createIndicators(view, studies, history, api, resubscribe) {
  var button = document.getElementById('indicators-toggle');
  var menu = document.getElementById('indicators-menu');
  var legendEl = document.getElementById('study-legend');
  var noteEl = document.getElementById('study-note');
  var hoverTime = null;
  var loadGen = 0;

  function note(bad) {
    if (!noteEl) return;
    if (!bad.length) {
      noteEl.hidden = true;
      noteEl.textContent = '';
      return;
    }
    noteEl.hidden = false;
    noteEl.textContent = 'Ignored indicator' + (bad.length > 1 ? 's' : '') + ': ' + bad.join(', ');
    api.studyNote = noteEl.textContent;
  }

  function persist(keys) {
    storageSet(storageKey(view.symbol), keys.join(','));
    var url = new URL(window.location.href);
    if (keys.length) url.searchParams.set('studies', keys.join(','));
    else url.searchParams.delete('studies');
    replaceUrl(url);
  }

  // The values of the shown bars for `keys` from the API; a key the server refuses is
  // dropped (and named in the note), then the rest asked for again.
  function load(keys, bad) {
    var gen = ++loadGen;
    if (!keys.length || !view.bars.length) return Promise.resolve();
    var params = { from: view.bars[0].time, limit: Math.min(MAX_LIMIT, view.bars.length + 50),
      studies: keys.join(',') };
    return history.getPage(params).then(function (page) {
      if (gen !== loadGen) return;
      studies.merge(page.studies, true);
      api.studiesLoaded = (api.studiesLoaded || 0) + 1;
    }).catch(function (err) {
      if (gen !== loadGen) return;
      // The key the server names; failing that, the study by name.
      var refused = err.status !== 400 ? [] : keys.filter(function (k) { return err.message.indexOf(k) >= 0; });
      if (err.status === 400 && !refused.length) {
        refused = keys.filter(function (k) { return new RegExp('\\b' + k.split(':')[0] + '\\b').test(err.message); });
      }
      if (!refused.length) {
        console.warn('tickchart: could not load studies:', err.message);
        return;
      }
      var rest = keys.filter(function (k) { return refused.indexOf(k) < 0; });
      note(bad.concat(refused));
      apply(rest, bad.concat(refused));
    });
  }

  var ignored = []; // the keys the note names since the studies were last chosen

  function apply(keys, bad) {
    ignored = (bad || []).slice();
    studies.setKeys(keys);
    persist(keys);
    renderMenu();
    api.studies = keys.slice();
    note(bad || []);
    resubscribe();
    return load(keys, bad || []);
  }

  function add(name) {
    var keys = studies.keys();
    if (keys.length >= MAX_STUDIES) return;
    var key = normalizeKey(name);
    if (keys.indexOf(key) >= 0) return;
    apply(keys.concat([key]));
  }

  function remove(key) {
    apply(studies.keys().filter(function (k) { return k !== key; }));
  }

  function edit(oldKey, index, value) {
    var parts = oldKey.split(':');
    parts[index + 1] = value;
    var key = normalizeKey(parts.join(':'));
    var keys = studies.keys();
    if (key === null || (key !== oldKey && keys.indexOf(key) >= 0)) {
      renderMenu(); // back to the valid value
      return;
    }
    apply(keys.map(function (k) { return k === oldKey ? key : k; }));
  }

  function renderMenu() {
    if (!menu) return;
    menu.textContent = '';
    var addBox = el('div', { class: 'ind-add', role: 'group', 'aria-label': 'Add indicator' });
    var full = studies.keys().length >= MAX_STUDIES;
    Object.keys(SPECS).forEach(function (name) {
      var b = el('button', { type: 'button', 'data-add-study': name,
        title: (SPECS[name].overlay ? 'Overlay' : 'Own pane') }, SPECS[name].label);
      if (full) b.disabled = true;
      b.addEventListener('click', function () { add(name); });
      addBox.appendChild(b);
    });
    menu.appendChild(addBox);
    var list = el('ul', { class: 'ind-list', 'aria-label': 'Chosen indicators' });
    studies.keys().forEach(function (key) {
      var spec = specOf(key);
      var li = el('li', { 'data-study': key });
      li.appendChild(el('span', { class: 'ind-name' }, spec.label));
      paramsOf(key).forEach(function (v, i) {
        var p = spec.params[i];
        var input = el('input', { type: 'number', min: p[2] ? '1' : '0.1', step: p[2] ? '1' : '0.1',
          value: String(v), 'aria-label': spec.label + ' ' + p[0], 'data-param': p[0] });
        input.addEventListener('change', function () { edit(key, i, input.value); });
        li.appendChild(input);
      });
      var rm = el('button', { type: 'button', class: 'remove-btn', 'data-remove-study': key,
        'aria-label': 'Remove ' + labelOf(key) }, '×');
      rm.addEventListener('click', function () { remove(key); });
      li.appendChild(rm);
      list.appendChild(li);
    });
    menu.appendChild(list);
  }

  function renderLegend() {
    if (!legendEl) return;
    var last = view.lastBar();
    var t = hoverTime !== null ? hoverTime : (last ? last.time : null);
    var values = studies.valuesAt(t);
    api.studyValues = values;
    api.studyTime = t;
    legendEl.textContent = '';
    values.forEach(function (v) {
      var item = el('span', { class: 'study-item', 'data-study': v.key });
      var name = el('span', { class: 'study-name' }, v.label);
      if (v.color) name.style.color = v.color;
      item.appendChild(name);
      item.appendChild(document.createTextNode(' '));
      item.appendChild(el('span', { class: 'study-value', 'data-study-value': v.key }, v.text));
      legendEl.appendChild(item);
    });
  }

  view.chart.subscribeCrosshairMove(function (param) {
    var t = param && param.time !== undefined ? Number(param.time) : null;
    hoverTime = t !== null && indexOfTime(view.bars, t) >= 0 ? t : null;
    renderLegend();
  });

  if (button && menu) {
    button.addEventListener('click', function () {
      var open = menu.hidden;
      menu.hidden = !open;
      button.setAttribute('aria-expanded', open ? 'true' : 'false');
    });
    document.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && !menu.hidden) {
        menu.hidden = true;
        button.setAttribute('aria-expanded', 'false');
      }
    });
  }

  // The URL's studies, else the saved ones for this symbol.
  function start() {
    var fromUrl = new URL(window.location.href).searchParams.get('studies');
    var parsed = parseKeys(fromUrl !== null ? fromUrl : storageGet(storageKey(view.symbol)) || '');
    return apply(parsed.keys, parsed.bad);
  }

  // An error frame with code bad_study: drop the keys it names.
  function refused(message) {
    var keys = studies.keys();
    var bad = keys.filter(function (k) { return message.indexOf(k) >= 0; });
    if (!bad.length) return;
    // Keep naming what was ignored before (the socket's refusal may come first or second).
    var named = ignored.concat(bad.filter(function (k) { return ignored.indexOf(k) < 0; }));
    apply(keys.filter(function (k) { return bad.indexOf(k) < 0; }), named);
  }

  return {
    start: start,
    refused: refused,
    // Replace the chosen studies (text as in the URL); returns the load's promise.
    set: function (text) {
      var parsed = parseKeys(text);
      return apply(parsed.keys, parsed.bad);
    },
    renderLegend: renderLegend,
    // New bars (a timeframe switch, a replacing snapshot): their values again.
    reload: function () { return load(studies.keys(), []); },
    keys: studies.keys,
    add: add,
    remove: remove,
  };
}

/*
 * The layout page (issue 12), its entry module (templates/market/layout.html loads it
 * after the classic scripts lightweight-charts and static/auth/access.js): a grid of 1, 2,
 * 4 or 6 panes (layout/pane.js) over ONE WebSocket (socket.js createConnection), each with
 * its own symbol search, timeframe, chart type, studies, link group and drawings switch;
 * linking (layout/link.js); and the layouts themselves: Save / Save as / Rename / Delete
 * on /api/layouts for a signed-in user, the layouts menu, and for a visitor (or before a
 * first save) the unsaved layout kept in localStorage. Each pane has the chart tools
 * (toolbox.js; its scale and compare symbols are kept in the layout); the keyboard
 * shortcuts (keys.js) act on the active pane (the last one pointed at or focused).
 *
 * For tests and benchmarks: window.tickchart = {layout ({id, name} or null), spec, dirty,
 * panes ([pane api], see pane.js), status, startedMs (this module ran), builtMs (every pane
 * built), firstPaintMs (the frame after), saved (finished API writes)}.
 */
import { theme } from '../chart.js';
import { createKeys } from '../keys.js';
import { createConnection } from '../socket.js';
import { createSearch } from '../search.js';
import { createStatus } from '../status.js';
import { parseKeys } from '../studies.js';
import { storageGet, storageSet, THEME_KEY } from '../storage.js';
import { createLinks } from './link.js';
import { createPane, fetchInfo } from './pane.js';

var LOCAL_KEY = 'tickchart.layout'; // the unsaved layout (a visitor's, or before a first save)
var DEFAULT_TFS = ['1m', '5m', '15m', '1h', '5s', '1d'];

var LC = window.LightweightCharts;
var configEl = document.getElementById('layout-config');
if (LC && configEl) start(JSON.parse(configEl.textContent));

function csrfToken() {
  var meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') : '';
}

function request(method, url, body) {
  var headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRFToken'] = csrfToken();
  return fetch(url, { method: method, headers: headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) }).then(function (r) {
    if (r.status === 204) return null;
    return r.json().catch(function () { return {}; }).then(function (data) {
      if (!r.ok) throw new Error((data && data.error) || 'HTTP ' + r.status);
      return data;
    });
  });
}

function copy(x) {
  return JSON.parse(JSON.stringify(x));
}

// A chart spec for grid cell `i` when the layout grows: the symbols in turn.
function defaultChart(config, i) {
  var symbols = config.symbols || [];
  var s = symbols.length ? symbols[i % symbols.length].ticker : 'DEMO:ALPHA';
  return { symbol: s, tf: DEFAULT_TFS[i % DEFAULT_TFS.length], type: 'candles', studies: [],
    drawings_visible: true, link_group: null, scale: 'normal', compare: [] };
}

function validSpec(spec, config) {
  return spec && config.grids.indexOf(spec.grid) >= 0 && Array.isArray(spec.charts) &&
    spec.charts.length === spec.grid && spec.charts.every(function (c) {
      return c && typeof c.symbol === 'string' && config.timeframes.indexOf(c.tf) >= 0;
    });
}

function start(config) {
  var layout = config.layout ? { id: config.layout.id, name: config.layout.name } : null;
  var spec = config.layout ? copy(config.layout.spec) : null;
  if (!spec) {
    try { spec = JSON.parse(storageGet(LOCAL_KEY) || 'null'); } catch (e) { spec = null; }
    if (!validSpec(spec, config)) spec = { grid: 4, theme: theme(), charts: [0, 1, 2, 3].map(function (i) { return defaultChart(config, i); }) };
  }
  var api = (window.tickchart = { layout: layout, spec: spec, dirty: false, panes: [], status: 'connecting',
    startedMs: performance.now(), builtMs: null, firstPaintMs: null, saved: 0, feed: null });

  var gridEl = document.getElementById('grid');
  var template = document.getElementById('pane-template');
  var noteEl = document.getElementById('layout-note');
  var nameEl = document.getElementById('layout-name');
  var dirtyEl = document.getElementById('layout-dirty');
  var status = createStatus(document.getElementById('status'), null, api);
  var slots = [];
  var active = null; // the pane the keyboard acts on
  var links = createLinks(function () { return slots; });
  var connection = createConnection(config, status, {
    other: function (msg) { slots.forEach(function (s) { if (s.chart) s.chart.message(msg); }); },
    reopened: function () { slots.forEach(function (s) { if (s.chart) s.chart.reopened(); }); },
  });

  function note(text) {
    noteEl.hidden = !text;
    noteEl.textContent = text || '';
  }

  // ---- the spec, saved or not
  function changed() {
    api.spec = spec;
    if (layout) {
      api.dirty = true;
      dirtyEl.hidden = false;
    } else {
      storageSet(LOCAL_KEY, JSON.stringify(spec));
    }
  }

  function showName() {
    nameEl.textContent = layout ? layout.name : 'Unsaved layout';
    document.title = (layout ? layout.name : 'Layout') + ' · TickChart';
    dirtyEl.hidden = !api.dirty;
    api.layout = layout;
  }

  // ---- panes
  function makeSlot(i) {
    var el = template.content.firstElementChild.cloneNode(true);
    var slot = { index: i, el: el, chart: null, seq: 0 };
    var q = function (sel) { return el.querySelector(sel); };
    slot.els = { chart: q('.pane-chart'), legend: q('.pane-legend'), studyLegend: q('.pane-study-legend'),
      note: q('.pane-note'), tools: q('.pane-tools'), root: el };
    ['pointerdown', 'pointerenter', 'focusin'].forEach(function (type) {
      el.addEventListener(type, function () { active = slot; }, { passive: true });
    });
    slot.symbolInput = q('.pane-symbol');
    var results = q('.search-results');
    results.id = 'pane-results-' + i;
    slot.symbolInput.setAttribute('aria-controls', results.id);
    slot.tfSelect = q('.pane-tf');
    slot.typeSelect = q('.pane-type');
    slot.studiesInput = q('.pane-studies');
    slot.linkSelect = q('.pane-link');
    slot.drawingsBox = q('.pane-drawings');
    slot.group = function () { return spec.charts[slot.index].link_group || null; };
    slot.search = createSearch(slot.symbolInput, results, config.api_symbols, function (ticker) {
      slot.search.close();
      slot.symbolInput.blur();
      setSymbol(slot, ticker);
    }, { idPrefix: 'pane-' + i + '-opt-', slash: false });
    slot.symbolInput.addEventListener('blur', function () { window.setTimeout(function () { showControls(slot); }, 200); });
    slot.tfSelect.addEventListener('change', function () { setTimeframe(slot, slot.tfSelect.value); });
    slot.typeSelect.addEventListener('change', function () {
      spec.charts[slot.index].type = slot.typeSelect.value;
      if (slot.chart) slot.chart.setType(slot.typeSelect.value);
      changed();
    });
    slot.studiesInput.addEventListener('change', function () {
      var parsed = parseKeys(slot.studiesInput.value);
      spec.charts[slot.index].studies = parsed.keys;
      slot.studiesInput.value = parsed.keys.join(',');
      if (slot.chart) slot.chart.setStudies(parsed.keys);
      changed();
    });
    slot.linkSelect.addEventListener('change', function () {
      spec.charts[slot.index].link_group = slot.linkSelect.value || null;
      showControls(slot);
      changed();
    });
    slot.drawingsBox.addEventListener('change', function () {
      spec.charts[slot.index].drawings_visible = slot.drawingsBox.checked;
      if (slot.chart) slot.chart.showDrawings(slot.drawingsBox.checked);
      changed();
    });
    links.watch(slot, slot.els.chart);
    gridEl.appendChild(el);
    return slot;
  }

  function showControls(slot) {
    var c = spec.charts[slot.index];
    var n = slot.index + 1;
    slot.el.setAttribute('aria-label', 'Chart ' + n + ': ' + c.symbol + ' ' + c.tf);
    slot.el.setAttribute('data-link', c.link_group || '');
    slot.el.setAttribute('data-pane', String(slot.index));
    if (document.activeElement !== slot.symbolInput) slot.symbolInput.value = c.symbol;
    slot.symbolInput.setAttribute('aria-label', 'Symbol of chart ' + n);
    slot.tfSelect.value = c.tf;
    slot.tfSelect.setAttribute('aria-label', 'Timeframe of chart ' + n);
    slot.typeSelect.value = c.type || 'candles';
    slot.typeSelect.setAttribute('aria-label', 'Chart type of chart ' + n);
    // (a reload finishing while the user types must not wipe what they typed)
    if (document.activeElement !== slot.studiesInput) slot.studiesInput.value = (c.studies || []).join(',');
    slot.studiesInput.setAttribute('aria-label', 'Indicators of chart ' + n + ' (comma-separated keys)');
    slot.linkSelect.value = c.link_group || '';
    slot.linkSelect.setAttribute('aria-label', 'Link group of chart ' + n);
    slot.drawingsBox.checked = c.drawings_visible !== false;
    slot.drawingsBox.setAttribute('aria-label', 'Show drawings on chart ' + n);
    slot.els.chart.setAttribute('aria-label', c.symbol + ' ' + c.tf + ' price chart with volume (chart ' + n + ')');
  }

  // (Re)build the chart of `slot` from its spec with `info` (server-rendered or fetched).
  function build(slot, info) {
    if (slot.chart) slot.chart.destroy();
    var paneApi = api.panes[slot.index] = { index: slot.index };
    slot.els.tools.textContent = ''; // the new chart's tools replace the old one's
    slot.chart = createPane(slot.els, spec.charts[slot.index], info, {
      LC: LC, config: config, connection: connection, signedIn: config.signed_in, api: paneApi,
      suffix: ' of chart ' + (slot.index + 1),
      crosshair: function (pane, param) { links.crosshair(slot, param); },
      range: function () { links.range(slot); },
      edited: function (field, value) {
        spec.charts[slot.index][field] = value;
        changed();
      },
    });
    showControls(slot);
  }

  function load(slot) {
    var c = spec.charts[slot.index];
    var seq = ++slot.seq;
    showControls(slot);
    return fetchInfo(config, c.symbol, c.tf, c.studies).then(function (info) {
      if (seq !== slot.seq || slots[slot.index] !== slot) return; // changed again meanwhile
      build(slot, info);
    });
  }

  // The panes of `slot`'s link group (itself included; alone without a group).
  function groupOf(slot) {
    var g = slot.group();
    return g ? slots.filter(function (s) { return s.group() === g; }) : [slot];
  }

  function setSymbol(slot, ticker) {
    groupOf(slot).forEach(function (s) {
      var c = spec.charts[s.index];
      if (c.symbol === ticker) return;
      c.symbol = ticker;
      c.compare = (c.compare || []).filter(function (t) { return t !== ticker; }); // never itself
      load(s);
    });
    changed();
  }

  function setTimeframe(slot, tf) {
    groupOf(slot).forEach(function (s) {
      if (spec.charts[s.index].tf === tf) return;
      spec.charts[s.index].tf = tf;
      load(s);
    });
    changed();
  }

  function setGrid(n) {
    if (config.grids.indexOf(n) < 0) return;
    while (spec.charts.length < n) spec.charts.push(defaultChart(config, spec.charts.length));
    spec.charts.length = n;
    spec.grid = n;
    while (slots.length > n) {
      var gone = slots.pop();
      if (gone.chart) gone.chart.destroy();
      gone.el.remove();
      api.panes.length = slots.length;
    }
    while (slots.length < n) load(slots[slots.length] = makeSlot(slots.length));
    showGrid();
    changed();
  }

  function showGrid() {
    gridEl.setAttribute('data-grid', String(spec.grid));
    document.querySelectorAll('[data-grid]').forEach(function (b) {
      if (b === gridEl) return;
      b.setAttribute('aria-pressed', b.getAttribute('data-grid') === String(spec.grid) ? 'true' : 'false');
    });
  }

  document.querySelectorAll('button[data-grid]').forEach(function (b) {
    b.addEventListener('click', function () { setGrid(Number(b.getAttribute('data-grid'))); });
  });

  // ---- theme
  var themeBtn = document.getElementById('theme-toggle');
  function applyTheme(name) {
    document.documentElement.setAttribute('data-theme', name);
    slots.forEach(function (s) { if (s.chart) s.chart.view.applyTheme(name); });
    themeBtn.setAttribute('aria-label', name === 'dark' ? 'Switch to light theme' : 'Switch to dark theme');
    api.theme = name;
  }
  themeBtn.addEventListener('click', function () {
    var next = theme() === 'dark' ? 'light' : 'dark';
    storageSet(THEME_KEY, next);
    spec.theme = next;
    applyTheme(next);
    changed();
  });

  // ---- the layouts: menu, Save, Save as, Rename, Delete
  var openSelect = document.getElementById('layout-open');
  var dialog = document.getElementById('layout-dialog');
  var form = document.getElementById('layout-form');
  var nameInput = document.getElementById('layout-name-input');
  var formError = document.getElementById('layout-form-error');
  var dialogTitle = document.getElementById('layout-dialog-title');
  var dialogAction = null;

  function url(id) {
    return config.api_layouts + (id ? '/' + id : '');
  }

  function refreshMenu() {
    if (!config.signed_in) return Promise.resolve();
    return request('GET', url()).then(function (body) {
      openSelect.textContent = '';
      var none = document.createElement('option');
      none.value = '';
      none.textContent = body.layouts.length ? '—' : 'none saved yet';
      openSelect.appendChild(none);
      body.layouts.forEach(function (l) {
        var o = document.createElement('option');
        o.value = String(l.id);
        o.textContent = l.name;
        openSelect.appendChild(o);
      });
      openSelect.value = layout ? String(layout.id) : '';
      api.menu = body.layouts.map(function (l) { return { id: l.id, name: l.name }; });
    }).catch(function (err) { note('Layouts could not be listed: ' + err.message); });
  }

  openSelect.addEventListener('change', function () {
    if (openSelect.value) window.location.assign('/layout/' + openSelect.value + '/');
  });

  function saved(body) {
    layout = { id: body.id, name: body.name };
    api.dirty = false;
    api.saved += 1;
    showName();
    var path = '/layout/' + body.id + '/';
    if (window.location.pathname !== path) window.history.replaceState(window.history.state, '', path);
    note('');
    return refreshMenu();
  }

  function ask(title, action, value) {
    dialogTitle.textContent = title;
    nameInput.value = value || '';
    formError.hidden = true;
    dialogAction = action;
    dialog.showModal();
    nameInput.focus();
  }

  // The name another of the user's layouts has (the server would answer 409), or null.
  function taken(name) {
    var clash = (api.menu || []).filter(function (l) { return l.name === name && (!layout || l.id !== layout.id || dialogAction === saveAs); });
    return clash.length ? 'name: you already have a layout named “' + name + '”' : null;
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var name = nameInput.value.trim().split(/\s+/).join(' ');
    var problem = name ? taken(name) : 'A layout needs a name.';
    if (problem) {
      formError.textContent = problem;
      formError.hidden = false;
      return;
    }
    dialogAction(name).then(function () { dialog.close(); }, function (err) {
      formError.textContent = err.message;
      formError.hidden = false;
    });
  });
  document.getElementById('layout-cancel').addEventListener('click', function () { dialog.close(); });

  function saveAs(name) {
    return request('POST', url(), { name: name, spec: spec }).then(saved);
  }

  document.getElementById('layout-save').addEventListener('click', function () {
    if (!layout) {
      ask('Save layout as', saveAs, '');
      return;
    }
    request('PATCH', url(layout.id), { spec: spec }).then(saved, function (err) { note('Not saved: ' + err.message); });
  });
  document.getElementById('layout-save-as').addEventListener('click', function () {
    ask('Save layout as', saveAs, layout ? layout.name + ' copy' : '');
  });
  document.getElementById('layout-rename').addEventListener('click', function () {
    if (!layout) {
      ask('Save layout as', saveAs, '');
      return;
    }
    ask('Rename layout', function (name) {
      return request('PATCH', url(layout.id), { name: name }).then(function (body) {
        var dirty = api.dirty;
        return saved(body).then(function () { api.dirty = dirty; showName(); });
      });
    }, layout.name);
  });
  document.getElementById('layout-delete').addEventListener('click', function () {
    if (!layout || !window.confirm('Delete the layout “' + layout.name + '”?')) return;
    request('DELETE', url(layout.id)).then(function () {
      api.saved += 1;
      layout = null;
      api.dirty = false;
      storageSet(LOCAL_KEY, JSON.stringify(spec)); // what is shown stays, unsaved
      window.history.replaceState(window.history.state, '', '/layout/');
      showName();
      refreshMenu();
    }, function (err) { note('Not deleted: ' + err.message); });
  });

  // ---- start: every pane's embedded history drawn before the socket opens
  if (spec.theme && spec.theme !== theme()) applyTheme(spec.theme);
  else applyTheme(theme());
  // Every pane's element is in the grid before the first chart measures its own: one
  // layout for all of them, not one forced by each chart after the next one was added.
  var i;
  showGrid();
  for (i = 0; i < spec.grid; i++) slots[i] = makeSlot(i);
  for (i = 0; i < spec.grid; i++) {
    var info = config.panes && config.panes[i];
    if (info) build(slots[i], info);
    else load(slots[i]);
  }
  showName();
  createKeys({
    api: api,
    timeframes: config.timeframes,
    target: function () {
      var slot = active && slots[active.index] === active ? active : slots[0];
      if (!slot || !slot.chart) return null;
      return { toolbox: slot.chart.toolbox, setTimeframe: function (tf) { setTimeframe(slot, tf); } };
    },
  });
  api.builtMs = performance.now();
  window.requestAnimationFrame(function () { api.firstPaintMs = performance.now(); });
  window.setInterval(function () { status.refresh(); }, 1000);
  refreshMenu();
  connection.connect();
}

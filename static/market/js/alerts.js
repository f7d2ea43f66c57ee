/*
 * Alerts on the chart page (issue 13), for signed-in users (a visitor sees a sign-in hint):
 *
 * - the panel (#alerts): the user's alerts (GET /api/alerts) with their state, pause /
 *   resume (PATCH) and delete, and the recent events; kept current by the socket's
 *   `alert` frames {"op":"upsert"|"delete","alert"} (every tab of the user hears them);
 * - a toast (static/market/js/toast.js) and, if switched on, a short beep for each
 *   `alert_event` frame {"event":{id,alert,symbol,tf,time,value,message,fired_at}};
 * - "+ Alert" and a right-click on the chart open a dialog prefilled with "price crosses
 *   <the crosshair's price>" on the shown symbol;
 * - the shown symbol's active price alerts as dashed price lines on the series;
 * - "Alert on this line" on a selected line drawing (a `drawing-alert` event from
 *   drawings/toolbar.js) opens the dialog for "price crosses <that line>", right
 *   `drawing:<id>`: the server follows the line as it is moved, and disables the alert
 *   (status "disabled", a reason) when it is deleted.
 *
 * Writes send the CSRF token the page carries (<meta name="csrf-token">; the cookie is
 * HttpOnly). For tests: window.tickchart.alerts() lists the alerts, .alertLines() the
 * prices of the drawn lines, .beeps counts the sounds.
 */
import { storageGet, storageSet } from './storage.js';
import { createToasts } from './toast.js';

export var SOUND_KEY = 'tickchart.alertSound';
var API = '/api/alerts';
var MAX_EVENTS = 20;
var OP_TEXT = {
  crosses: 'crosses', crosses_above: 'crosses above', crosses_below: 'crosses below', above: 'is above',
  below: 'is below', moves_up_pct: 'moves up %', moves_down_pct: 'moves down %',
};
var LINE_COLOR = '#f0b429';

function byId(id) { return document.getElementById(id); }

var DRAWING = 'drawing:';
var LINE_NAMES = { hline: 'horizontal line', hray: 'horizontal ray', trend: 'trend line', ray: 'ray' };

function numberText(v) {
  var n = Number(v);
  return isFinite(n) && String(v).trim() !== '' ? String(n) : String(v);
}

function rightText(right) {
  return String(right).indexOf(DRAWING) === 0 ? 'line #' + String(right).slice(DRAWING.length) : numberText(right);
}

export function describe(a) {
  return a.symbol + ' ' + a.left + ' ' + (OP_TEXT[a.op] || a.op) + ' ' + rightText(a.right) +
    (a.left === 'price' ? '' : ' (' + a.tf + ')');
}

export function createAlerts(LC, config, view, api) {
  var panel = byId('alerts');
  if (!panel) return { start: function () {}, message: function () {}, opened: function () {} };
  var listEl = byId('alerts-list');
  var eventsEl = byId('alert-events');
  var hintEl = byId('alerts-hint');
  var addBtn = byId('alert-add');
  var soundBox = byId('alert-sound');
  var dialog = byId('alert-dialog');
  var form = byId('alert-form');
  var formError = byId('alert-form-error');
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var toasts = createToasts(byId('toasts'));
  var alerts = new Map();
  var events = [];
  var lines = [];
  var lineSeries = null;
  var signedIn = null; // null: not known yet (frames wait in `early`)
  var early = [];
  var crosshairPrice = null;
  var audio = null;

  api.beeps = 0;
  api.alerts = function () { return Array.from(alerts.values()); };
  api.alertLines = function () { return lines.map(function (l) { return l.options().price; }); };

  function request(method, url, body) {
    var headers = { Accept: 'application/json' };
    var opts = { method: method, credentials: 'same-origin', headers: headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    if (method !== 'GET' && csrfMeta) headers['X-CSRFToken'] = csrfMeta.getAttribute('content');
    return window.fetch(url, opts).then(function (r) {
      if (r.status === 204) return null;
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error || 'HTTP ' + r.status);
        return j;
      });
    });
  }

  // ---- the list ------------------------------------------------------------------------

  function button(text, label, fn) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'small-btn';
    b.textContent = text;
    b.setAttribute('aria-label', label);
    b.addEventListener('click', fn);
    return b;
  }

  function failed(err) {
    toasts.show('Alert not changed', err.message || String(err), { urgent: true });
  }

  function renderList() {
    listEl.textContent = '';
    var all = Array.from(alerts.values()).sort(function (a, b) { return b.id - a.id; });
    if (!all.length) {
      var empty = document.createElement('li');
      empty.className = 'alerts-empty';
      empty.textContent = 'No alerts yet. Right-click the chart or use + Alert.';
      listEl.appendChild(empty);
    }
    all.forEach(function (a) {
      var li = document.createElement('li');
      li.setAttribute('data-alert-id', String(a.id));
      li.setAttribute('data-status', a.status);
      var text = document.createElement('span');
      text.className = 'alert-desc';
      text.textContent = describe(a) + (a.message ? ' · ' + a.message : '');
      var state = document.createElement('span');
      state.className = 'alert-state';
      state.textContent = a.expired ? 'expired' : a.status;
      if (a.reason) state.title = a.reason;
      if (a.status === 'disabled' && a.reason) text.textContent += ' · ' + a.reason;
      li.appendChild(text);
      li.appendChild(state);
      var what = describe(a);
      if (a.status === 'active' || a.status === 'paused') {
        var next = a.status === 'active' ? 'paused' : 'active';
        li.appendChild(button(a.status === 'active' ? 'Pause' : 'Resume',
          (a.status === 'active' ? 'Pause alert ' : 'Resume alert ') + what, function () {
            request('PATCH', API + '/' + a.id, { status: next }).then(upsert).catch(failed);
          }));
      }
      li.appendChild(button('Delete', 'Delete alert ' + what, function () {
        request('DELETE', API + '/' + a.id).then(function () { remove(a.id); }).catch(failed);
      }));
      listEl.appendChild(li);
    });
    api.alertCount = all.length;
  }

  function renderEvents() {
    eventsEl.textContent = '';
    events.forEach(function (ev) {
      var li = document.createElement('li');
      li.setAttribute('data-event-id', ev.id);
      var when = new Date(ev.time * 1000).toLocaleTimeString();
      li.textContent = when + ' ' + ev.symbol + ' ' + numberText(ev.value) + (ev.message ? ' · ' + ev.message : '');
      eventsEl.appendChild(li);
    });
  }

  function upsert(a) {
    alerts.set(a.id, a);
    renderList();
    drawLines();
  }

  function remove(id) {
    alerts.delete(id);
    renderList();
    drawLines();
  }

  function addEvents(list) {
    var seen = new Set(events.map(function (e) { return e.id; }));
    list.forEach(function (e) { if (!seen.has(e.id)) events.push(e); });
    events.sort(function (a, b) { return b.fired_at - a.fired_at; });
    events = events.slice(0, MAX_EVENTS);
    renderEvents();
  }

  // ---- price lines -----------------------------------------------------------------------

  function drawLines() {
    var series = view.series();
    if (lineSeries === series) {
      lines.forEach(function (l) { series.removePriceLine(l); });
    }
    lines = [];
    lineSeries = series;
    if (!series) return;
    alerts.forEach(function (a) {
      var price = Number(a.right);
      if (a.symbol !== view.symbol || a.left !== 'price' || a.status !== 'active' || !isFinite(price)) return;
      lines.push(series.createPriceLine({
        price: price, color: LINE_COLOR, lineWidth: 1, lineStyle: LC.LineStyle ? LC.LineStyle.Dashed : 2,
        axisLabelVisible: true, title: a.message ? 'Alert: ' + a.message.slice(0, 20) : 'Alert',
      }));
    });
  }

  // The chart type buttons replace the series (static/market/js/chart.js): draw on the new one.
  document.addEventListener('click', function (e) {
    if (e.target && e.target.closest && e.target.closest('[data-type]')) {
      window.setTimeout(function () { if (view.series() !== lineSeries) { lineSeries = null; drawLines(); } }, 0);
    }
  });

  // ---- sound -----------------------------------------------------------------------------

  function soundOn() { return storageGet(SOUND_KEY) === '1'; }

  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      audio = audio || new Ctx();
      var t = audio.currentTime;
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.12, t);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t);
      osc.stop(t + 0.26);
      api.beeps += 1;
    } catch (e) { /* no audio device: the toast is enough */ }
  }

  // ---- frames ------------------------------------------------------------------------------

  function onEvent(ev) {
    if (!ev || typeof ev !== 'object') return;
    var a = alerts.get(ev.alert);
    var title = 'Alert: ' + (a ? describe(a) : ev.symbol);
    var body = (ev.message ? ev.message + ' · ' : '') + ev.symbol + ' at ' + numberText(ev.value);
    toasts.show(title, body, { urgent: true, id: ev.id, ms: 10000 });
    addEvents([ev]);
    if (soundOn()) beep();
  }

  function message(msg) {
    if (signedIn === null) {
      if (early.length < 100) early.push(msg);
      return;
    }
    if (!signedIn) return;
    if (msg.type === 'alert_event') onEvent(msg.event);
    else if (msg.type === 'alert' && msg.alert && msg.op === 'delete') remove(msg.alert.id);
    else if (msg.type === 'alert' && msg.alert && msg.op === 'upsert') upsert(msg.alert);
  }

  // ---- the dialog ----------------------------------------------------------------------------

  function roundPrice(p) {
    if (p === null || !isFinite(p)) return '';
    var text = view.formatPrice ? view.formatPrice(p) : String(p);
    var n = Number(String(text).replace(/[^0-9.\-]/g, ''));
    return isFinite(n) ? String(n) : String(p);
  }

  function lastClose() {
    var bar = view.lastBar();
    return bar ? bar.close : null;
  }

  var lineTarget = null; // {id, kind}: the dialog sets an alert on that drawing

  function openDialog(price, line) {
    if (signedIn !== true || !dialog) return;
    form.reset();
    formError.textContent = '';
    formError.hidden = true;
    byId('alert-symbol').textContent = view.symbol;
    lineTarget = line || null;
    form.elements.right.readOnly = Boolean(lineTarget);
    form.elements.right.value = lineTarget ? 'the ' + (LINE_NAMES[lineTarget.kind] || 'line') + ' #' + lineTarget.id
      : roundPrice(price === null ? lastClose() : price);
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    form.elements.right.focus();
    form.elements.right.select();
  }

  function closeDialog() {
    if (typeof dialog.close === 'function') dialog.close();
    else dialog.removeAttribute('open');
  }

  if (form) {
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var right = lineTarget ? DRAWING + lineTarget.id : Number(form.elements.right.value);
      if (!lineTarget && (form.elements.right.value.trim() === '' || !isFinite(right))) {
        formError.textContent = 'Enter a price.';
        formError.hidden = false;
        return;
      }
      request('POST', API, {
        symbol: view.symbol, tf: view.tf, left: 'price', op: form.elements.op.value, right: right,
        trigger: form.elements.trigger.value, message: form.elements.message.value.trim(),
      }).then(function (a) {
        upsert(a);
        closeDialog();
        toasts.show('Alert set', describe(a), { ms: 4000 });
      }).catch(function (err) {
        formError.textContent = err.message || String(err);
        formError.hidden = false;
      });
    });
    byId('alert-cancel').addEventListener('click', closeDialog);
  }

  // The last price the crosshair was on: moving to "+ Alert" takes the pointer off the chart.
  view.chart.subscribeCrosshairMove(function (param) {
    var series = view.series();
    if (!param || !param.point || !series) return;
    var price = series.coordinateToPrice(param.point.y);
    if (price !== null) crosshairPrice = price;
  });

  var chartEl = byId('chart');
  if (chartEl) {
    chartEl.addEventListener('contextmenu', function (e) {
      if (signedIn !== true) return;
      var series = view.series();
      var rect = chartEl.getBoundingClientRect();
      var price = series ? series.coordinateToPrice(e.clientY - rect.top) : null;
      e.preventDefault();
      openDialog(price === null ? crosshairPrice : price);
    });
  }
  if (addBtn) addBtn.addEventListener('click', function () { openDialog(crosshairPrice); });
  document.addEventListener('drawing-alert', function (e) {
    if (e.detail && e.detail.id) openDialog(null, { id: e.detail.id, kind: e.detail.kind });
  });

  if (soundBox) {
    soundBox.checked = soundOn();
    soundBox.addEventListener('change', function () {
      storageSet(SOUND_KEY, soundBox.checked ? '1' : '0');
      if (soundBox.checked) beep(); // a user gesture: lets the browser start audio, and a preview
    });
  }

  // ---- start ------------------------------------------------------------------------------------

  function load() {
    return request('GET', API).then(function (body) {
      alerts = new Map();
      body.alerts.forEach(function (a) { alerts.set(a.id, a); });
      renderList();
      drawLines();
      // recent events: those of the newest few alerts
      var newest = body.alerts.slice(-5);
      return Promise.all(newest.map(function (a) {
        return request('GET', API + '/' + a.id + '/events').then(function (r) { return r.events.slice(-MAX_EVENTS); });
      })).then(function (lists) { addEvents([].concat.apply([], lists)); });
    }).catch(function (err) { console.warn('tickchart: could not load alerts:', err.message); });
  }

  function start() {
    return window.fetch(config.api_session || '/api/session', { credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(function (info) {
        signedIn = Boolean(info.authenticated) && info.via === 'session';
        panel.setAttribute('data-signed-in', signedIn ? 'true' : 'false');
        if (!signedIn) {
          hintEl.hidden = false;
          var link = hintEl.querySelector('a');
          if (link && window.tickchartAccess) link.href = window.tickchartAccess.signInHref(info.login_url);
          return null;
        }
        addBtn.hidden = false;
        soundBox.closest('label').hidden = false;
        return load();
      })
      .catch(function () { signedIn = false; /* the page works without alerts */ })
      .then(function () {
        if (signedIn === null) signedIn = false;
        var queued = early;
        early = [];
        queued.forEach(message);
        api.alertsReady = true;
      });
  }

  return {
    start: start,
    message: message,
    // The socket reconnected: frames may have been missed, read the list again.
    opened: function () { if (signedIn === true) load(); },
  };
}

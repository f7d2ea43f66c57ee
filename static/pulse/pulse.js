/* Market Pulse page: draws what the server computes (market.pulse.service) and pushes over
 * /ws/pulse/. Movers grouped by asset class and sortable; stress feed (stored events on
 * load, then live); correlation card. Reconnects with backoff. No framework, no CDN. */
(function () {
  'use strict';

  var config = JSON.parse(document.getElementById('pulse-config').textContent);
  var COLUMNS = [
    { key: 'symbol', label: 'Symbol' },
    { key: 'last', label: 'Last', num: true, fmt: fmtPrice },
    { key: 'r1m', label: '1m', num: true, fmt: fmtPct, signed: true },
    { key: 'r5m', label: '5m', num: true, fmt: fmtPct, signed: true },
    { key: 'r15m', label: '15m', num: true, fmt: fmtPct, signed: true },
    { key: 'vol15m', label: 'σ 15m', num: true, fmt: fmtPct },
    { key: 'slope', label: 'Slope', num: true, fmt: fmtSlope, signed: true },
    { key: 'regime', label: 'Regime' }
  ];
  var MAX_EVENTS = 200;
  var state = { movers: [], sortKey: 'r5m', sortDir: -1, events: [] };

  // Numbers as the chart page shows them: the typographic minus (U+2212), prices to their
  // symbol's tick size (config.price_decimals), times on the 24-hour clock.
  var MINUS = '\u2212';
  function num(v, digits) {
    var s = Math.abs(v).toFixed(digits);
    return (v < 0 && Number(s) !== 0 ? MINUS : '') + s;
  }
  // The server's event texts ("DEMO:ALPHA -0.53% in 1m"): their negative numbers too.
  function minusSigns(text) { return String(text).replace(/(^|[\s(])-(?=\d)/g, '$1' + MINUS); }
  function fmtPct(v) { return v === null || v === undefined ? '–' : num(v * 100, 2) + '%'; }
  function fmtPrice(v, m) {
    if (v === null || v === undefined) return '–';
    var digits = m && config.price_decimals && config.price_decimals[m.symbol];
    if (typeof digits !== 'number') digits = v >= 1000 ? 2 : v >= 1 ? 4 : 6; // a symbol the page did not know
    return num(v, digits);
  }
  function fmtSlope(v) { return v === null || v === undefined ? '–' : num(v * 1e4, 2) + ' bp/m'; }
  var timeFormat = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  function fmtTime(epoch) { return timeFormat.format(new Date(epoch * 1000)); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // -- movers ------------------------------------------------------------------------------
  function compare(a, b) {
    var k = state.sortKey, x = a[k], y = b[k];
    if (k !== 'symbol' && k !== 'regime' && typeof x === 'number' && typeof y === 'number') {
      x = Math.abs(x); y = Math.abs(y);  // movers rank by size of the move, either way
    }
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    if (x < y) return -state.sortDir;
    if (x > y) return state.sortDir;
    return a.symbol < b.symbol ? -1 : 1;
  }

  function header() {
    var tr = el('tr');
    COLUMNS.forEach(function (c) {
      var th = el('th', c.num ? 'num' : '', c.label);
      th.dataset.key = c.key;
      th.setAttribute('role', 'columnheader');
      if (c.key === state.sortKey) th.setAttribute('aria-sort', state.sortDir > 0 ? 'ascending' : 'descending');
      th.addEventListener('click', function () {
        if (state.sortKey === c.key) state.sortDir = -state.sortDir;
        else { state.sortKey = c.key; state.sortDir = c.num ? -1 : 1; }
        renderMovers();
      });
      tr.appendChild(th);
    });
    var thead = el('thead');
    thead.appendChild(tr);
    return thead;
  }

  function row(m) {
    var tr = el('tr');
    COLUMNS.forEach(function (c) {
      var v = m[c.key];
      var td;
      if (c.key === 'symbol') {
        td = el('td');
        var a = el('a', '', v);
        a.href = config.chart_path + encodeURIComponent(v).replace(/%3A/g, ':') + '/?tf=1m';
        td.appendChild(a);
      } else if (c.key === 'regime') {
        td = el('td', 'regime-' + v, v.replace('_', ' '));
      } else {
        td = el('td', 'num', c.fmt(v, m));
        if (c.signed && typeof v === 'number' && v !== 0) td.classList.add(v > 0 ? 'up' : 'down');
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function renderMovers() {
    var root = document.getElementById('movers-groups');
    root.textContent = '';
    if (!state.movers.length) {
      root.appendChild(el('p', 'muted empty', 'Waiting for the pulse…'));
      return;
    }
    var groups = {};
    state.movers.forEach(function (m) { (groups[m['class']] = groups[m['class']] || []).push(m); });
    var order = config.class_order.filter(function (k) { return groups[k]; })
      .concat(Object.keys(groups).filter(function (k) { return config.class_order.indexOf(k) < 0; }).sort());
    order.forEach(function (cls) {
      var section = el('section', 'mover-group');
      section.dataset.assetClass = cls;
      section.appendChild(el('h3', '', cls + ' (' + groups[cls].length + ')'));
      var table = el('table', 'movers-table');
      table.appendChild(header());
      var tbody = el('tbody');
      groups[cls].sort(compare).forEach(function (m) { tbody.appendChild(row(m)); });
      table.appendChild(tbody);
      section.appendChild(table);
      root.appendChild(section);
    });
  }

  // -- stress feed -------------------------------------------------------------------------
  function renderEvents(fresh) {
    var list = document.getElementById('stress-list');
    list.textContent = '';
    state.events.forEach(function (e, i) {
      var li = el('li', i < fresh ? 'fresh' : '');
      var t = el('time', '', fmtTime(e.time));
      t.dateTime = new Date(e.time * 1000).toISOString();
      li.appendChild(t);
      li.appendChild(el('span', 'kind', e.kind.replace('_', ' ')));
      li.appendChild(el('span', 'msg', minusSigns(e.message)));
      list.appendChild(li);
    });
    document.getElementById('stress-empty').hidden = state.events.length > 0;
  }

  function addEvents(events, fresh) {
    if (!events || !events.length) return;
    var sorted = events.slice().sort(function (a, b) { return b.time - a.time; });
    state.events = sorted.concat(state.events).slice(0, MAX_EVENTS);
    renderEvents(fresh ? sorted.length : 0);
  }

  // -- correlation -------------------------------------------------------------------------
  function renderCorrelation(card) {
    var meta = document.getElementById('corr-meta');
    var body = document.getElementById('corr-body');
    body.textContent = '';
    if (!card) { meta.textContent = 'No base symbol yet.'; return; }
    meta.textContent = 'vs ' + card.base + ' · ' + (card.bucket / 60) + 'm buckets · look-back ' +
      card.lookback + (card.regime === 'high_vol' ? ' (shortened: high volatility)' : '');
    card.top.forEach(function (r) {
      var tr = el('tr');
      tr.appendChild(el('td', '', r.symbol));
      tr.appendChild(el('td', 'num ' + (r.corr >= 0 ? 'up' : 'down'), num(r.corr, 2)));
      tr.appendChild(el('td', 'num', String(r.n)));
      body.appendChild(tr);
    });
    if (!card.top.length) meta.textContent += ' · not enough common data yet';
  }

  // -- connection --------------------------------------------------------------------------
  function setStatus(s, text) {
    document.body.dataset.status = s;
    document.getElementById('pulse-status').textContent = text || s;
  }

  // A refused socket (market.web.access) shows a sign-in link instead of retrying for ever
  // (static/auth/access.js).
  function checkAccess(code, proceed) {
    window.tickchartAccess.check(code, config.api_session, showSignIn, proceed);
  }

  function showSignIn(loginUrl) {
    setStatus('signed_out', 'signed out');
    if (document.getElementById('sign-in')) return;
    var link = el('a', 'sign-in', 'Sign in');
    link.id = 'sign-in';
    link.href = window.tickchartAccess.signInHref(loginUrl);
    var status = document.getElementById('pulse-status');
    status.parentNode.insertBefore(link, status.nextSibling);
  }

  var delay = 1000;
  function connect() {
    var proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
    var ws = new WebSocket(proto + location.host + config.ws_path);
    var first = true;
    var opened = false;
    ws.onopen = function () { opened = true; delay = 1000; setStatus('live', 'live'); };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === 'hello') {
        if (first) { state.events = []; addEvents(msg.events, false); renderEvents(0); }
        first = false;
      } else if (msg.type === 'pulse') {
        state.movers = msg.movers || [];
        renderMovers();
        renderCorrelation(msg.correlation);
        addEvents(msg.events, true);
        document.getElementById('pulse-updated').textContent = 'updated ' + fmtTime(msg.time);
      }
    };
    ws.onclose = function (event) {
      setStatus('reconnecting', 'reconnecting…');
      var retry = function () {
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
      if ((config.sign_in_required && !opened) || event.code === 4401 || event.code === 4403) {
        checkAccess(event.code, retry);
      } else {
        retry();
      }
    };
  }

  addEvents(config.events, false);
  renderEvents(0);
  connect();
})();

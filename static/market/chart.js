/*
 * TickChart chart page.
 *
 * Reads the view's JSON data block (#chart-config), draws price (candles, line or area)
 * and volume with TradingView lightweight-charts v5 (static/vendor/, see package.json),
 * then keeps it live over the WebSocket at config.ws_path:
 *
 *   client -> {"type":"subscribe","symbol","tf","since"?}   {"type":"unsubscribe","symbol","tf"}
 *   server -> {"type":"snapshot","symbol","tf","candles":[...]}   (candles since `since`, inclusive)
 *             {"type":"candle","symbol","tf","candle":{time,open,high,low,close,volume,ticks}}
 *             {"type":"status","source","state","detail","heartbeat"}   {"type":"error","message"}
 *             {"type":"sync","seq"} / {"type":"behind","seq"} (answered with {"type":"ack","seq"}),
 *             {"type":"snapshot",...,"since","resync":true}   {"type":"caught_up"}   (slow-client flow control)
 *
 * Candle times are epoch seconds (UTC). lightweight-charts works in UTC; the axis and
 * crosshair labels are formatted in exchange-local time (config.tz) by our formatters, so
 * the browser's own zone never matters. Daily bars are stamped 00:00 UTC of their trading
 * date and are shown as that date.
 *
 * A candle with the time of a shown bar replaces it, also an older one (the server's gap
 * repair); scrolling near the left edge loads older pages from /api/candles.
 *
 * For tests and debugging: document.body.dataset.status is 'connecting' | 'live' |
 * 'stale' | 'reconnecting' | 'market_closed' | 'token_expired' | 'stopped', and
 * window.tickchart holds {symbol, tf, lastCandle, candleCount, firstTime, status, ...}.
 */
(function () {
  'use strict';

  var LC = window.LightweightCharts;
  var configEl = document.getElementById('chart-config');
  var chartEl = document.getElementById('chart');
  if (!LC || !configEl || !chartEl) {
    return;
  }
  var config = JSON.parse(configEl.textContent);

  var BACKOFF_MIN_MS = 500;
  var BACKOFF_MAX_MS = 10000;
  var STALE_MS = 15000;
  var DEFAULT_BAR_SPACING = 6;
  var MAX_BAR_SPACING = 24;
  var PAGE = 1000; // candles per scroll-back page
  var PREFETCH_BARS = 150; // load older history when fewer bars than this are left of the view
  var RANGE_PAGE = 10000; // candles per request for the range buttons (the API's maximum)
  var MAX_BARS = 60000; // "All" stops here
  var WATCH_KEY = 'tickchart.watchlist';
  var TYPE_KEY = 'tickchart.seriesType';
  var THEME_KEY = 'tickchart.theme';
  var UP = '#26a69a';
  var DOWN = '#ef5350';
  var THEMES = {
    dark: { background: '#131722', text: '#b2b5be', grid: 'rgba(42, 46, 57, 0.6)', border: '#2a2e39' },
    light: { background: '#ffffff', text: '#191919', grid: 'rgba(197, 203, 206, 0.5)', border: '#d6dcde' },
  };
  var RANGES = { '1D': 86400, '5D': 5 * 86400, '1M': 31 * 86400, All: null };

  var state = {
    symbol: config.symbol,
    tf: config.tf,
    tz: config.tz || 'UTC',
    session: config.session || null,
    bars: [], // ascending {time, open, high, low, close, volume}
    seriesType: 'candles',
    ws: null,
    attempts: 0,
    reconnectTimer: null,
    generation: 0, // bumped on every timeframe switch; stale fetches are dropped
    subscribed: null,
    since: null,
    replaceOnSnapshot: false,
    closing: false,
    hovering: false,
    gotSnapshot: false,
    feed: null, // last status frame
    heartbeatAt: null, // client time the feed's heartbeat last changed
    loadingOlder: false,
    noMoreOlder: false,
  };

  var api = (window.tickchart = {
    symbol: state.symbol,
    tf: state.tf,
    lastCandle: null,
    candleCount: 0,
    firstTime: null,
    status: 'connecting',
    feed: null,
    seriesType: 'candles',
    olderLoads: 0,
    revisions: 0,
    tickLabels: [],
    hoverTime: null,
    firstPaintMs: null,
  });

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) { /* storage disabled or full */ }
  }

  // ---- Time ---------------------------------------------------------------------------

  function tfSeconds(tf) {
    var m = /^(\d+)([smhd])$/.exec(tf);
    if (!m) return 60;
    return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
  }

  function isDaily(tf) {
    return /d$/.test(tf);
  }

  function hasSeconds(tf) {
    return /s$/.test(tf);
  }

  var formatterCache = {};
  function formatter(zone, opts) {
    var key = zone + JSON.stringify(opts);
    if (!formatterCache[key]) {
      var o = { timeZone: zone, hourCycle: 'h23' };
      for (var k in opts) o[k] = opts[k];
      formatterCache[key] = new Intl.DateTimeFormat('en-GB', o);
    }
    return formatterCache[key];
  }

  // {year, month, day, weekday, hour, minute, second} of epoch seconds `t` in `zone`
  // (memoized: the axis asks for the same instants on every frame while panning).
  var partsCache = new Map();
  function partsOf(t, zone, numeric) {
    var key = zone + (numeric ? '#' : '|') + t;
    var hit = partsCache.get(key);
    if (hit) return hit;
    if (partsCache.size > 4000) partsCache.clear();
    var out = partsOfUncached(t, zone, numeric);
    partsCache.set(key, out);
    return out;
  }

  function partsOfUncached(t, zone, numeric) {
    var parts = formatter(zone, {
      year: 'numeric', month: numeric ? '2-digit' : 'short', day: '2-digit', weekday: 'short',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(new Date(t * 1000));
    var out = {};
    for (var i = 0; i < parts.length; i++) out[parts[i].type] = parts[i].value;
    return out;
  }

  function zoneFor(tf) {
    return isDaily(tf) ? 'UTC' : state.tz;
  }

  function formatFull(t) {
    var p = partsOf(t, zoneFor(state.tf));
    var date = p.weekday + ' ' + p.day + ' ' + p.month + ' ' + p.year;
    if (isDaily(state.tf)) return date;
    var time = p.hour + ':' + p.minute + (hasSeconds(state.tf) ? ':' + p.second : '');
    return date + ' ' + time;
  }

  function tickMark(t, type) {
    var p = partsOf(t, zoneFor(state.tf));
    var T = LC.TickMarkType;
    var label = null;
    switch (type) {
      case T.Year: label = p.year; break;
      case T.Month: label = p.month; break;
      case T.DayOfMonth: label = p.day + ' ' + p.month; break;
      case T.Time: label = p.hour + ':' + p.minute; break;
      case T.TimeWithSeconds: label = p.hour + ':' + p.minute + ':' + p.second; break;
    }
    if (label !== null) {
      api.tickLabels.push(label);
      if (api.tickLabels.length > 200) api.tickLabels.splice(0, 100);
    }
    return label;
  }

  // The exchange's session on the local date of instant `t`: {open, close} in epoch s, or
  // null on a weekend. Round-the-clock exchanges have no session (null config).
  function sessionDay(t) {
    var s = state.session;
    var p = partsOf(t, s.tz, true);
    if (p.weekday === 'Sat' || p.weekday === 'Sun') return null;
    var y = Number(p.year), mo = Number(p.month) - 1, d = Number(p.day);
    var asUtc = Date.UTC(y, mo, d, Number(p.hour) % 24, Number(p.minute), Number(p.second)) / 1000;
    var offset = asUtc - Math.floor(t);
    function at(hhmm) {
      var hm = hhmm.split(':');
      return Date.UTC(y, mo, d, Number(hm[0]), Number(hm[1])) / 1000 - offset;
    }
    return { open: at(s.open), close: at(s.close) };
  }

  function marketClosed(now) {
    if (!state.session) return false;
    var day = sessionDay(now);
    return !day || now < day.open || now >= day.close;
  }

  // When the bucket holding `now` closes (epoch s), or null when the market is closed.
  function bucketEnd(now) {
    var s = tfSeconds(state.tf);
    if (!state.session) {
      return isDaily(state.tf) ? (Math.floor(now / 86400) + 1) * 86400 : (Math.floor(now / s) + 1) * s;
    }
    var day = sessionDay(now);
    if (!day || now < day.open || now >= day.close) return null;
    if (isDaily(state.tf)) return day.close;
    return Math.min(day.close, day.open + (Math.floor((now - day.open) / s) + 1) * s);
  }

  function formatDuration(sec) {
    sec = Math.max(0, Math.floor(sec));
    var h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    var mm = (h && m < 10 ? '0' : '') + m;
    return (h ? h + ':' : '') + mm + ':' + (s < 10 ? '0' : '') + s;
  }

  // ---- Chart --------------------------------------------------------------------------

  function theme() {
    return document.documentElement.getAttribute('data-theme') === 'light' ? 'light' : 'dark';
  }

  function chartColors(name) {
    var c = THEMES[name];
    return {
      layout: { background: { type: LC.ColorType.Solid, color: c.background }, textColor: c.text,
        panes: { separatorColor: c.border } },
      grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
      rightPriceScale: { borderColor: c.border },
      timeScale: { borderColor: c.border },
    };
  }

  var options = chartColors(theme());
  options.autoSize = true;
  options.timeScale.timeVisible = !isDaily(state.tf);
  options.timeScale.secondsVisible = hasSeconds(state.tf);
  options.timeScale.barSpacing = DEFAULT_BAR_SPACING;
  options.timeScale.maxBarSpacing = MAX_BAR_SPACING;
  options.timeScale.minBarSpacing = 0.05;
  options.timeScale.tickMarkFormatter = function (time, type) { return tickMark(time, type); };
  options.localization = { timeFormatter: function (time) { return formatFull(time); } };
  options.crosshair = { mode: LC.CrosshairMode.Normal };
  var chart = LC.createChart(chartEl, options);
  api.chart = chart;

  var priceFormat = priceFormatFor(config.candles || []);
  var series = null;
  var volumeSeries = chart.addSeries(
    LC.HistogramSeries,
    { priceFormat: { type: 'volume' }, priceLineVisible: false, lastValueVisible: true },
    1
  );

  function makeSeries(type) {
    var common = { priceFormat: priceFormat, priceLineVisible: true, lastValueVisible: true,
      priceLineStyle: LC.LineStyle.Dashed };
    if (type === 'line') {
      common.color = UP;
      common.lineWidth = 2;
      return chart.addSeries(LC.LineSeries, common, 0);
    }
    if (type === 'area') {
      common.lineColor = UP;
      common.lineWidth = 2;
      return chart.addSeries(LC.AreaSeries, common, 0);
    }
    common.upColor = UP;
    common.downColor = DOWN;
    common.borderUpColor = UP;
    common.borderDownColor = DOWN;
    common.wickUpColor = UP;
    common.wickDownColor = DOWN;
    return chart.addSeries(LC.CandlestickSeries, common, 0);
  }

  function layoutPanes() {
    var panes = chart.panes();
    if (panes.length > 1) {
      panes[0].setStretchFactor(3);
      panes[1].setStretchFactor(1);
    }
  }

  // Decimal places of the prices seen (2..6), so the scale neither rounds nor pads them.
  function priceFormatFor(candles) {
    var decimals = 2;
    for (var i = Math.max(0, candles.length - 200); i < candles.length; i++) {
      var c = candles[i];
      [c.open, c.high, c.low, c.close].forEach(function (v) {
        var s = String(v);
        var dot = s.indexOf('.');
        if (dot >= 0 && s.indexOf('e') < 0) decimals = Math.max(decimals, s.length - dot - 1);
      });
    }
    decimals = Math.min(decimals, 6);
    return { type: 'price', precision: decimals, minMove: Math.pow(10, -decimals) };
  }

  function toBar(c) {
    return {
      time: Number(c.time),
      open: Number(c.open),
      high: Number(c.high),
      low: Number(c.low),
      close: Number(c.close),
      volume: Number(c.volume) || 0,
    };
  }

  function seriesPoint(bar) {
    if (state.seriesType === 'candles') return bar;
    return { time: bar.time, value: bar.close };
  }

  function volumeOf(bar) {
    return {
      time: bar.time,
      value: bar.volume,
      color: bar.close >= bar.open ? 'rgba(38, 166, 154, 0.5)' : 'rgba(239, 83, 80, 0.5)',
    };
  }

  // Ascending, one bar per time (the last one wins), invalid rows dropped.
  function normalize(candles) {
    var byTime = {};
    var times = [];
    (candles || []).forEach(function (c) {
      var bar = toBar(c);
      if (!isFinite(bar.time) || !isFinite(bar.close)) return;
      if (!(bar.time in byTime)) times.push(bar.time);
      byTime[bar.time] = bar;
    });
    times.sort(function (a, b) { return a - b; });
    return times.map(function (t) { return byTime[t]; });
  }

  function lastBar() {
    return state.bars.length ? state.bars[state.bars.length - 1] : null;
  }

  function pushAll() {
    series.setData(state.bars.map(seriesPoint));
    volumeSeries.setData(state.bars.map(volumeOf));
    updateDirection();
  }

  // Replaces everything shown (new timeframe, first load, a snapshot after a long gap).
  function setData(candles) {
    state.bars = normalize(candles);
    state.noMoreOlder = false;
    pushAll();
    fitView(state.bars.length);
    publish();
  }

  // Few bars: spread them over the width; enough bars: default spacing, newest in view.
  function fitView(count) {
    var ts = chart.timeScale();
    var width = ts.width() || chartEl.clientWidth - 70; // 0 until autoSize has measured
    if (count > 0 && count * DEFAULT_BAR_SPACING < width) {
      ts.fitContent();
    } else {
      ts.applyOptions({ barSpacing: DEFAULT_BAR_SPACING });
      ts.scrollToRealTime();
    }
  }

  function indexOfTime(t) {
    var lo = 0, hi = state.bars.length - 1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      var v = state.bars[mid].time;
      if (v === t) return mid;
      if (v < t) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1; // insertion point, encoded
  }

  // One whole-candle snapshot: a newer time is appended, a shown time is replaced (also an
  // older bar: the server revised it), a missing older time is inserted.
  function applyCandle(c) {
    var bar = toBar(c);
    if (!isFinite(bar.time) || !isFinite(bar.close)) return;
    var last = lastBar();
    if (!last || bar.time >= last.time) {
      if (last && bar.time === last.time) state.bars[state.bars.length - 1] = bar;
      else state.bars.push(bar);
      series.update(seriesPoint(bar));
      volumeSeries.update(volumeOf(bar));
    } else {
      var i = indexOfTime(bar.time);
      if (i >= 0) {
        state.bars[i] = bar;
        series.update(seriesPoint(bar), true);
        volumeSeries.update(volumeOf(bar), true);
      } else {
        if (state.bars.length && bar.time < state.bars[0].time) return; // before what we show
        state.bars.splice(-i - 1, 0, bar);
        keepRange(0, pushAll);
      }
      api.revisions += 1;
    }
    publish();
  }

  // Runs `change` (which adds `added` bars on the left) without moving the visible bars.
  function keepRange(added, change) {
    var ts = chart.timeScale();
    var range = ts.getVisibleLogicalRange();
    change();
    if (range && added) ts.setVisibleLogicalRange({ from: range.from + added, to: range.to + added });
  }

  function publish() {
    var last = lastBar();
    api.symbol = state.symbol;
    api.tf = state.tf;
    api.lastCandle = last ? JSON.parse(JSON.stringify(last)) : null;
    api.candleCount = state.bars.length;
    api.firstTime = state.bars.length ? state.bars[0].time : null;
    if (!state.hovering) showLegend(last, prevClose());
    if (last) {
      document.title = state.symbol + ' ' + formatPrice(last.close) + ' · ' + state.tf + ' · TickChart';
    }
  }

  function prevClose() {
    var n = state.bars.length;
    return n > 1 ? state.bars[n - 2].close : null;
  }

  // Line and area follow the direction of what is in view: green up, red down.
  var directionFrame = null;
  function updateDirection() {
    if (state.seriesType === 'candles' || !state.bars.length) return;
    var range = chart.timeScale().getVisibleLogicalRange();
    var n = state.bars.length;
    var from = range ? Math.min(n - 1, Math.max(0, Math.ceil(range.from))) : 0;
    var to = range ? Math.min(n - 1, Math.max(0, Math.floor(range.to))) : n - 1;
    var up = state.bars[to].close >= state.bars[from].close;
    var color = up ? UP : DOWN;
    if (state.seriesType === 'line') {
      series.applyOptions({ color: color });
    } else {
      series.applyOptions({ lineColor: color, topColor: up ? 'rgba(38, 166, 154, 0.4)' : 'rgba(239, 83, 80, 0.4)',
        bottomColor: up ? 'rgba(38, 166, 154, 0.02)' : 'rgba(239, 83, 80, 0.02)' });
    }
    chartEl.setAttribute('data-direction', up ? 'up' : 'down');
  }

  function setSeriesType(type) {
    if (type !== 'line' && type !== 'area') type = 'candles';
    if (series && type === state.seriesType) return;
    var ts = chart.timeScale();
    var range = series ? ts.getVisibleLogicalRange() : null;
    // Add the new series before removing the old one: an emptied pane would be dropped
    // and the volume pane would take its place.
    var old = series;
    state.seriesType = type;
    series = makeSeries(type);
    if (old) chart.removeSeries(old);
    layoutPanes();
    if (state.bars.length) pushAll();
    if (range) ts.setVisibleLogicalRange(range);
    api.seriesType = type;
    storageSet(TYPE_KEY, type);
    document.querySelectorAll('[data-type]').forEach(function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-type') === type ? 'true' : 'false');
    });
  }

  // ---- Legend and countdown -------------------------------------------------------------

  var legendEl = document.getElementById('legend');
  var legendFields = {};
  if (legendEl) {
    legendEl.querySelectorAll('[data-field]').forEach(function (el) {
      legendFields[el.getAttribute('data-field')] = el;
    });
  }
  var volumeFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 });

  function formatPrice(v) {
    return series.priceFormatter().format(v);
  }

  function setField(name, text) {
    if (legendFields[name]) legendFields[name].textContent = text;
  }

  function showLegend(bar, prev) {
    if (!legendEl) return;
    if (!bar) {
      ['time', 'open', 'high', 'low', 'close', 'change', 'volume'].forEach(function (f) { setField(f, '—'); });
      legendEl.removeAttribute('data-direction');
      return;
    }
    setField('time', formatFull(bar.time));
    setField('open', formatPrice(bar.open));
    setField('high', formatPrice(bar.high));
    setField('low', formatPrice(bar.low));
    setField('close', formatPrice(bar.close));
    var base = prev !== null && prev !== undefined ? prev : bar.open;
    var diff = bar.close - base;
    var pct = base ? (diff / base) * 100 : 0;
    setField('change', (diff >= 0 ? '+' : '') + formatPrice(diff) + ' (' + (diff >= 0 ? '+' : '') + pct.toFixed(2) + '%)');
    setField('volume', volumeFormat.format(bar.volume || 0));
    legendEl.setAttribute('data-direction', bar.close >= bar.open ? 'up' : 'down');
  }

  chart.subscribeCrosshairMove(function (param) {
    var t = param && param.time !== undefined ? Number(param.time) : null;
    var i = t === null ? -1 : indexOfTime(t);
    if (i < 0) {
      state.hovering = false;
      api.hoverTime = null;
      showLegend(lastBar(), prevClose());
      return;
    }
    state.hovering = true;
    api.hoverTime = t;
    showLegend(state.bars[i], i > 0 ? state.bars[i - 1].close : null);
  });

  var countdownEl = document.getElementById('countdown');
  function tickCountdown() {
    var now = Date.now() / 1000;
    if (countdownEl) {
      var end = bucketEnd(now);
      countdownEl.textContent = end === null ? 'market closed' : 'closes in ' + formatDuration(end - now);
      countdownEl.setAttribute('data-closed', end === null ? 'true' : 'false');
    }
    refreshStatus();
  }

  // ---- Status ---------------------------------------------------------------------------

  var statusEl = document.getElementById('status');
  var STATUS_TEXT = { market_closed: 'market closed', token_expired: 'token expired' };
  var socketState = 'connecting'; // connecting | open | reconnecting

  function computeStatus() {
    if (socketState !== 'open') return socketState;
    var feed = state.feed;
    if (feed && ['reconnecting', 'token_expired', 'stopped', 'stale', 'market_closed'].indexOf(feed.state) >= 0) {
      return feed.state;
    }
    if (feed && state.heartbeatAt !== null && Date.now() - state.heartbeatAt > STALE_MS) return 'stale';
    if (marketClosed(Date.now() / 1000)) return 'market_closed';
    if (feed && feed.state === 'starting') return 'connecting';
    return state.gotSnapshot ? 'live' : 'connecting';
  }

  function refreshStatus() {
    var status = computeStatus();
    if (status === api.status && document.body.dataset.status === status) return;
    document.body.dataset.status = status;
    api.status = status;
    if (statusEl) {
      statusEl.textContent = STATUS_TEXT[status] || status;
      statusEl.setAttribute('data-status', status);
      if (state.feed && state.feed.detail) statusEl.title = state.feed.detail;
    }
  }

  function onStatus(msg) {
    if (!state.feed || state.feed.heartbeat !== msg.heartbeat) state.heartbeatAt = Date.now();
    state.feed = { source: msg.source, state: msg.state, detail: msg.detail, heartbeat: msg.heartbeat };
    api.feed = state.feed;
    refreshStatus();
  }

  // ---- WebSocket ------------------------------------------------------------------------

  function socketUrl() {
    var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
    return scheme + window.location.host + (config.ws_path || '/ws/market/');
  }

  function send(msg) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  function subscribe() {
    var last = lastBar();
    var msg = { type: 'subscribe', symbol: state.symbol, tf: state.tf };
    if (last && !state.replaceOnSnapshot) msg.since = Math.floor(last.time);
    if (send(msg)) {
      state.subscribed = { symbol: state.symbol, tf: state.tf };
      state.since = msg.since === undefined ? null : msg.since;
    }
  }

  function unsubscribe() {
    var sub = state.subscribed;
    if (sub) {
      // The watchlist shares daily subscriptions: keep those.
      if (!(sub.tf === '1d' && watch.rows[sub.symbol])) send({ type: 'unsubscribe', symbol: sub.symbol, tf: sub.tf });
      state.subscribed = null;
    }
  }

  function isCurrent(msg) {
    return msg.symbol === state.symbol && msg.tf === state.tf;
  }

  // Flow control (server side: market/core/outbox.py). Every sync (and the one behind) is
  // acked at once: about one small frame per 64 received. While the server holds our live
  // frames the badge says "catching up"; only after a second, since a page load (many
  // snapshots at once) can be behind for a moment.
  function setCatchingUp(on) {
    if (state.catchUpTimer) window.clearTimeout(state.catchUpTimer);
    state.catchUpTimer = null;
    api.catchingUp = on;
    if (on) {
      state.catchUpTimer = window.setTimeout(function () {
        state.catchUpTimer = null;
        document.body.dataset.catchingUp = 'true';
        if (statusEl) statusEl.textContent = 'catching up';
      }, 1000);
    } else if (document.body.dataset.catchingUp === 'true') {
      delete document.body.dataset.catchingUp;
      api.status = null; // repaint the badge
      refreshStatus();
    }
  }

  // A resync snapshot (the server caught a stream up after holding it): candles from
  // msg.since, inclusive, merged like a resume; the newest candles instead if too many.
  function applyResync(msg) {
    if (!isCurrent(msg) || state.replaceOnSnapshot) return; // a full snapshot is on its way
    var candles = normalize(msg.candles);
    var last = lastBar();
    if (!last || (candles.length > 0 && candles[0].time > msg.since)) setData(candles);
    else candles.forEach(applyCandle);
  }

  function onMessage(event) {
    var msg;
    try {
      msg = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'status') {
      onStatus(msg);
      return;
    }
    if (msg.type === 'sync' || msg.type === 'behind') {
      send({ type: 'ack', seq: msg.seq });
      if (msg.type === 'behind') setCatchingUp(true);
      return;
    }
    if (msg.type === 'caught_up') {
      setCatchingUp(false);
      return;
    }
    if (msg.type === 'snapshot' || msg.type === 'candle') watchMessage(msg);
    if (msg.type === 'snapshot' && msg.resync) {
      applyResync(msg);
    } else if (msg.type === 'snapshot') {
      if (!isCurrent(msg)) return;
      if (api.catchingUp) setCatchingUp(false); // a new connection starts in step
      var candles = normalize(msg.candles);
      var last = lastBar();
      var replace = state.replaceOnSnapshot || !last || state.since === null ||
        (candles.length > 0 && candles[0].time > state.since);
      if (replace) {
        state.replaceOnSnapshot = false;
        setData(candles);
      } else {
        candles.forEach(applyCandle);
      }
      state.attempts = 0;
      state.gotSnapshot = true;
      refreshStatus();
    } else if (msg.type === 'candle') {
      if (!isCurrent(msg) || !msg.candle || state.replaceOnSnapshot) return;
      applyCandle(msg.candle);
    } else if (msg.type === 'error') {
      console.warn('tickchart: server error:', msg.message);
      api.lastError = { code: msg.code || null, symbol: msg.symbol, tf: msg.tf, message: String(msg.message || '') };
      if (statusEl) statusEl.title = String(msg.message || 'server error');
      // Past the vendor's symbol limit: history is shown, live updates are not (yet).
      if (msg.code === 'symbol_limit' && isCurrent(msg) && statusEl) statusEl.textContent = 'not live: symbol limit';
    }
  }

  function connect() {
    state.reconnectTimer = null;
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.subscribed = null;
    ws.onopen = function () {
      if (state.ws !== ws) return;
      socketState = 'open';
      state.gotSnapshot = false;
      subscribe();
      watchSubscribeAll();
      refreshStatus();
    };
    ws.onmessage = function (event) {
      if (state.ws !== ws) return;
      onMessage(event);
    };
    ws.onclose = function (event) {
      if (state.ws !== ws) return;
      var opened = socketState === 'open';
      state.ws = null;
      state.subscribed = null;
      if (state.closing) return;
      // A handshake that never opened may have been refused (market.access): ask first.
      if ((config.sign_in_required && !opened) || event.code === 4401 || event.code === 4403) {
        checkAccess(event.code, scheduleReconnect);
      } else {
        scheduleReconnect();
      }
    };
    ws.onerror = function () { /* onclose follows and schedules the reconnect */ };
  }

  // A refused handshake shows a sign-in link instead of retrying (static/auth/access.js).
  function checkAccess(code, proceed) {
    window.tickchartAccess.check(code, config.api_session, showSignIn, proceed);
  }

  function showSignIn(loginUrl) {
    socketState = 'signed_out';
    refreshStatus();
    if (statusEl) statusEl.textContent = 'signed out';
    if (document.getElementById('sign-in') || !statusEl) return;
    var link = document.createElement('a');
    link.id = 'sign-in';
    link.className = 'small-btn';
    link.href = window.tickchartAccess.signInHref(loginUrl);
    link.textContent = 'Sign in';
    statusEl.parentNode.insertBefore(link, statusEl.nextSibling);
  }

  function scheduleReconnect() {
    if (state.reconnectTimer !== null || state.closing) return;
    socketState = 'reconnecting';
    state.gotSnapshot = false;
    refreshStatus();
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, state.attempts));
    delay = Math.max(BACKOFF_MIN_MS, Math.round(delay * (0.8 + Math.random() * 0.2)));
    state.attempts += 1;
    state.reconnectTimer = window.setTimeout(connect, delay);
  }

  window.addEventListener('pagehide', function () {
    state.closing = true;
    if (state.ws) state.ws.close(1000);
  });
  window.addEventListener('pageshow', function (event) {
    if (event.persisted && state.closing) {
      state.closing = false;
      socketState = 'connecting';
      refreshStatus();
      connect();
    }
  });

  // ---- History over HTTP ----------------------------------------------------------------

  function candlesUrl(params) {
    var url = new URL(config.api_candles || '/api/candles', window.location.href);
    url.searchParams.set('symbol', state.symbol);
    url.searchParams.set('tf', state.tf);
    for (var k in params) if (params[k] !== undefined && params[k] !== null) url.searchParams.set(k, params[k]);
    return url.toString();
  }

  function getCandles(params) {
    return fetch(candlesUrl(params), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (body) { return normalize(body.candles || []); });
  }

  // One page older than the first bar, added on the left without moving the view.
  function loadOlder(limit) {
    if (state.loadingOlder || state.noMoreOlder || !state.bars.length) return Promise.resolve(0);
    state.loadingOlder = true;
    var generation = state.generation;
    var first = state.bars[0].time;
    return getCandles({ to: first - 1, limit: limit || PAGE })
      .then(function (older) {
        if (generation !== state.generation) return 0;
        older = older.filter(function (b) { return b.time < state.bars[0].time; });
        if (older.length < (limit || PAGE)) state.noMoreOlder = true;
        if (older.length) {
          keepRange(older.length, function () {
            state.bars = older.concat(state.bars);
            pushAll();
          });
          api.olderLoads += 1;
          publish();
        }
        return older.length;
      })
      .catch(function (err) {
        console.warn('tickchart: could not load older candles:', err.message);
        return 0;
      })
      .then(function (n) {
        state.loadingOlder = false;
        return n;
      });
  }

  var rangeFrame = null;
  chart.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
    if (rangeFrame !== null) return;
    rangeFrame = window.requestAnimationFrame(function () {
      rangeFrame = null;
      updateDirection();
      var r = chart.timeScale().getVisibleLogicalRange();
      if (r && r.from < PREFETCH_BARS && !state.rangeBusy) loadOlder(PAGE);
    });
  });

  function showRange(code) {
    if (!(code in RANGES) || !state.bars.length) return;
    var span = RANGES[code];
    var generation = state.generation;
    var target = span === null ? null : lastBar().time - span;
    state.rangeBusy = true;
    document.body.setAttribute('data-loading', 'true');
    function more() {
      if (generation !== state.generation) return Promise.resolve();
      var enough = target !== null && state.bars[0].time <= target;
      if (enough || state.noMoreOlder || state.bars.length >= MAX_BARS) return Promise.resolve();
      return loadOlder(RANGE_PAGE).then(function (n) { return n ? more() : null; });
    }
    more().then(function () {
      state.rangeBusy = false;
      document.body.removeAttribute('data-loading');
      if (generation !== state.generation) return;
      var ts = chart.timeScale();
      if (target === null) {
        ts.fitContent();
      } else {
        var i = indexOfTime(target);
        var from = i >= 0 ? i : -i - 1;
        ts.setVisibleLogicalRange({ from: from, to: state.bars.length - 1 + 3 });
      }
      api.range = code;
    });
  }

  // ---- Timeframe ------------------------------------------------------------------------

  function chartUrl(ticker, tf) {
    var path = '/chart/' + encodeURIComponent(ticker).replace(/%3A/gi, ':') + '/';
    return path + '?tf=' + encodeURIComponent(tf);
  }

  function switchTimeframe(tf) {
    if (!tf || tf === state.tf) return;
    unsubscribe();
    state.generation += 1;
    var generation = state.generation;
    state.tf = tf;
    state.replaceOnSnapshot = true; // ignore live updates until the new history is in
    state.noMoreOlder = false;
    chart.applyOptions({ timeScale: { timeVisible: !isDaily(tf), secondsVisible: hasSeconds(tf) } });
    var url = new URL(window.location.href);
    url.searchParams.set('tf', tf);
    window.history.replaceState(window.history.state, '', url.toString());
    api.tf = tf;
    updateWatchAdd();

    getCandles({})
      .then(function (bars) {
        if (generation !== state.generation) return;
        state.replaceOnSnapshot = false;
        setData(bars);
        subscribe();
      })
      .catch(function (err) {
        if (generation !== state.generation) return;
        console.warn('tickchart: could not load candles for ' + tf + ':', err.message);
        state.replaceOnSnapshot = true;
        subscribe();
      });
  }

  var tfSelect = document.getElementById('tf-select');
  if (tfSelect) {
    tfSelect.addEventListener('change', function () { switchTimeframe(tfSelect.value); });
  }
  document.querySelectorAll('[data-type]').forEach(function (b) {
    b.addEventListener('click', function () { setSeriesType(b.getAttribute('data-type')); });
  });
  document.querySelectorAll('[data-range]').forEach(function (b) {
    b.addEventListener('click', function () { showRange(b.getAttribute('data-range')); });
  });

  // ---- Theme ----------------------------------------------------------------------------

  var themeBtn = document.getElementById('theme-toggle');
  function applyTheme(name) {
    document.documentElement.setAttribute('data-theme', name);
    chart.applyOptions(chartColors(name));
    api.theme = name;
    if (themeBtn) themeBtn.setAttribute('aria-label', name === 'dark' ? 'Switch to light theme' : 'Switch to dark theme');
  }
  if (themeBtn) {
    themeBtn.addEventListener('click', function () {
      var next = theme() === 'dark' ? 'light' : 'dark';
      storageSet(THEME_KEY, next);
      applyTheme(next);
    });
  }

  // ---- Search ---------------------------------------------------------------------------

  var searchInput = document.getElementById('symbol-search');
  var resultsEl = document.getElementById('search-results');
  var search = { items: [], active: -1, timer: null, seq: 0 };

  function closeResults() {
    resultsEl.hidden = true;
    searchInput.setAttribute('aria-expanded', 'false');
    searchInput.removeAttribute('aria-activedescendant');
    search.active = -1;
  }

  function renderResults() {
    resultsEl.textContent = '';
    search.items.forEach(function (s, i) {
      var li = document.createElement('li');
      li.id = 'search-opt-' + i;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', i === search.active ? 'true' : 'false');
      li.dataset.ticker = s.ticker;
      var t = document.createElement('span');
      t.className = 'opt-ticker';
      t.textContent = s.ticker;
      var n = document.createElement('span');
      n.className = 'opt-name';
      n.textContent = s.name || '';
      li.appendChild(t);
      li.appendChild(n);
      li.addEventListener('mousedown', function (e) {
        e.preventDefault();
        chooseSymbol(s.ticker);
      });
      resultsEl.appendChild(li);
    });
    if (!search.items.length) {
      var empty = document.createElement('li');
      empty.className = 'opt-empty';
      empty.textContent = 'No matching symbols';
      resultsEl.appendChild(empty);
    }
    resultsEl.hidden = false;
    searchInput.setAttribute('aria-expanded', 'true');
    if (search.active >= 0) searchInput.setAttribute('aria-activedescendant', 'search-opt-' + search.active);
    else searchInput.removeAttribute('aria-activedescendant');
  }

  function runSearch() {
    var q = searchInput.value.trim();
    var seq = ++search.seq;
    if (!q) {
      closeResults();
      return;
    }
    var url = new URL(config.api_symbols || '/api/symbols', window.location.href);
    url.searchParams.set('q', q);
    fetch(url.toString(), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : { symbols: [] }; })
      .then(function (body) {
        if (seq !== search.seq) return;
        search.items = body.symbols || [];
        search.active = search.items.length ? 0 : -1;
        renderResults();
      })
      .catch(function () { /* offline: keep what is shown */ });
  }

  function chooseSymbol(ticker) {
    closeResults();
    if (ticker === state.symbol) return;
    window.location.assign(chartUrl(ticker, state.tf));
  }

  if (searchInput && resultsEl) {
    searchInput.addEventListener('input', function () {
      window.clearTimeout(search.timer);
      search.timer = window.setTimeout(runSearch, 120);
    });
    searchInput.addEventListener('keydown', function (e) {
      var n = search.items.length;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        if (resultsEl.hidden || !n) return;
        e.preventDefault();
        search.active = (search.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
        renderResults();
        var el = document.getElementById('search-opt-' + search.active);
        if (el) el.scrollIntoView({ block: 'nearest' });
      } else if (e.key === 'Enter') {
        e.preventDefault();
        if (!resultsEl.hidden && search.active >= 0 && search.items[search.active]) {
          chooseSymbol(search.items[search.active].ticker);
        } else {
          window.clearTimeout(search.timer);
          runSearch();
        }
      } else if (e.key === 'Escape') {
        closeResults();
      }
    });
    searchInput.addEventListener('blur', function () { window.setTimeout(closeResults, 150); });
    document.addEventListener('keydown', function (e) {
      var tag = (e.target && e.target.tagName) || '';
      if (e.key === '/' && tag !== 'INPUT' && tag !== 'SELECT' && tag !== 'TEXTAREA') {
        e.preventDefault();
        searchInput.focus();
      }
    });
  }

  // ---- Watchlist (daily candles over the same socket) -----------------------------------

  var watch = { tickers: [], rows: {} };
  var watchBody = document.getElementById('watch-rows');
  var watchAdd = document.getElementById('watch-add');

  function loadWatchlist() {
    var saved = null;
    try {
      saved = JSON.parse(storageGet(WATCH_KEY) || 'null');
    } catch (e) {
      saved = null;
    }
    if (!Array.isArray(saved)) {
      saved = (config.symbols || []).slice(0, 6).map(function (s) { return s.ticker; });
    }
    return saved.filter(function (t) { return typeof t === 'string' && t; }).slice(0, 40);
  }

  function saveWatchlist() {
    storageSet(WATCH_KEY, JSON.stringify(watch.tickers));
  }

  function watchRow(ticker) {
    var tr = document.createElement('tr');
    tr.dataset.ticker = ticker;
    if (ticker === state.symbol) tr.setAttribute('aria-current', 'true');
    var sym = document.createElement('td');
    var link = document.createElement('a');
    link.href = chartUrl(ticker, state.tf);
    link.className = 'watch-link';
    link.textContent = ticker;
    link.setAttribute('aria-label', 'Chart ' + ticker);
    link.addEventListener('click', function (e) {
      e.preventDefault();
      chooseSymbol(ticker);
    });
    sym.appendChild(link);
    tr.appendChild(sym);
    var cells = {};
    ['last', 'change', 'pct'].forEach(function (f) {
      var td = document.createElement('td');
      td.className = 'num';
      td.dataset.field = f;
      td.textContent = '—';
      cells[f] = td;
      tr.appendChild(td);
    });
    var rm = document.createElement('td');
    var btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'remove-btn';
    btn.textContent = '×';
    btn.setAttribute('aria-label', 'Remove ' + ticker + ' from watchlist');
    btn.addEventListener('click', function () { removeWatch(ticker); });
    rm.appendChild(btn);
    tr.appendChild(rm);
    return { tr: tr, cells: cells, day: null, prev: null };
  }

  function renderWatch(ticker) {
    var row = watch.rows[ticker];
    if (!row || !row.day) return;
    var last = row.day.close;
    var base = row.prev !== null ? row.prev : row.day.open;
    var diff = last - base;
    var pct = base ? (diff / base) * 100 : 0;
    var fmt = function (v) { return v.toFixed(Math.abs(last) < 10 ? 4 : 2); };
    row.cells.last.textContent = fmt(last);
    row.cells.change.textContent = (diff >= 0 ? '+' : '') + fmt(diff);
    row.cells.pct.textContent = (diff >= 0 ? '+' : '') + pct.toFixed(2) + '%';
    row.tr.setAttribute('data-direction', diff >= 0 ? 'up' : 'down');
  }

  function watchMessage(msg) {
    if (msg.tf !== '1d') return;
    var row = watch.rows[msg.symbol];
    if (!row) return;
    if (msg.type === 'snapshot') {
      var days = normalize(msg.candles);
      if (!days.length) return;
      var n = days.length;
      if (!row.day || days[n - 1].time >= row.day.time) {
        row.day = days[n - 1];
        if (n > 1) row.prev = days[n - 2].close;
      }
    } else if (msg.candle) {
      var bar = toBar(msg.candle);
      if (row.day && bar.time < row.day.time) return;
      if (row.day && bar.time > row.day.time) row.prev = row.day.close;
      row.day = bar;
    }
    renderWatch(msg.symbol);
  }

  function watchSubscribe(ticker) {
    send({ type: 'subscribe', symbol: ticker, tf: '1d' });
  }

  function watchSubscribeAll() {
    watch.tickers.forEach(function (t) {
      if (!(state.tf === '1d' && t === state.symbol)) watchSubscribe(t);
    });
  }

  function addWatch(ticker, subscribeNow) {
    if (watch.rows[ticker]) return;
    watch.tickers.push(ticker);
    watch.rows[ticker] = watchRow(ticker);
    watchBody.appendChild(watch.rows[ticker].tr);
    if (subscribeNow) watchSubscribe(ticker);
  }

  function removeWatch(ticker) {
    var row = watch.rows[ticker];
    if (!row) return;
    delete watch.rows[ticker];
    watch.tickers = watch.tickers.filter(function (t) { return t !== ticker; });
    row.tr.remove();
    if (!(state.tf === '1d' && ticker === state.symbol)) send({ type: 'unsubscribe', symbol: ticker, tf: '1d' });
    saveWatchlist();
    updateWatchAdd();
  }

  function updateWatchAdd() {
    if (watchAdd) watchAdd.hidden = !!watch.rows[state.symbol];
    document.querySelectorAll('.watch-link').forEach(function (a) {
      a.href = chartUrl(a.textContent, state.tf);
    });
  }

  if (watchBody) {
    loadWatchlist().forEach(function (t) { addWatch(t, false); });
    updateWatchAdd();
    if (watchAdd) {
      watchAdd.addEventListener('click', function () {
        addWatch(state.symbol, true);
        saveWatchlist();
        updateWatchAdd();
      });
    }
  }

  // Phone: the watchlist starts collapsed; the toggle opens it under the chart.
  var watchToggle = document.getElementById('watchlist-toggle');
  function setWatchOpen(open) {
    document.body.setAttribute('data-watchlist', open ? 'open' : 'closed');
    if (watchToggle) watchToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
  }
  setWatchOpen(!(window.matchMedia && window.matchMedia('(max-width: 700px)').matches));
  if (watchToggle) {
    watchToggle.addEventListener('click', function () {
      setWatchOpen(document.body.getAttribute('data-watchlist') !== 'open');
    });
  }

  // ---- Start ----------------------------------------------------------------------------

  // Benchmarks and tests: replace the data with `candles` (e.g. 50,000 bars).
  api.setCandles = function (candles) {
    setData(candles);
    return state.bars.length;
  };
  api.loadOlder = loadOlder;
  api.series = function () { return series; };
  api.times = function () { return state.bars.map(function (b) { return b.time; }); };

  applyTheme(theme());
  var savedType = storageGet(TYPE_KEY);
  state.seriesType = null;
  setSeriesType(savedType || 'candles');
  setData(config.candles || []);
  window.requestAnimationFrame(function () {
    api.firstPaintMs = performance.now();
  });
  tickCountdown();
  window.setInterval(tickCountdown, 1000);
  connect();
})();

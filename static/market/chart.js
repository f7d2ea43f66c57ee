/*
 * TickChart chart page.
 *
 * Reads the view's JSON data block (#chart-config), draws the candles and volume with
 * TradingView lightweight-charts v5 (static/vendor/, see package.json), then keeps the
 * last bars live over the WebSocket at config.ws_path:
 *
 *   client -> {"type":"subscribe","symbol","tf","since"?}   {"type":"unsubscribe","symbol","tf"}
 *   server -> {"type":"snapshot","symbol","tf","candles":[...]}   (candles since `since`, inclusive)
 *             {"type":"candle","symbol","tf","candle":{time,open,high,low,close,volume,ticks}}
 *             {"type":"error","message"}
 *
 * Candle times are epoch seconds (UTC). The axis and crosshair show exchange-local time
 * (config.tz); daily bars are stamped 00:00 UTC of their trading date, so they are shown
 * as a date formatted in UTC.
 *
 * For tests and debugging: document.body.dataset.status is 'connecting' | 'live' |
 * 'reconnecting', and window.tickchart = {symbol, tf, lastCandle, candleCount, status}.
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
  var DEFAULT_BAR_SPACING = 6;
  var MAX_BAR_SPACING = 24;
  var COLORS = {
    background: '#131722',
    text: '#b2b5be',
    grid: 'rgba(42, 46, 57, 0.6)',
    border: '#2a2e39',
    up: '#26a69a',
    down: '#ef5350',
    upVolume: 'rgba(38, 166, 154, 0.5)',
    downVolume: 'rgba(239, 83, 80, 0.5)',
  };

  var state = {
    symbol: config.symbol,
    tf: config.tf,
    tz: config.tz || 'UTC',
    lastTime: null, // time of the newest bar in the series
    lastCandle: null,
    prevClose: null, // close of the bar before the newest one (for the change figure)
    count: 0,
    ws: null,
    attempts: 0,
    reconnectTimer: null,
    generation: 0, // bumped on every timeframe switch; stale fetches are dropped
    subscribed: null, // {symbol, tf} the socket is subscribed to
    since: null, // the `since` of the last subscribe sent (null: none)
    replaceOnSnapshot: false, // the next snapshot replaces the series (no history loaded)
    closing: false,
    hovering: false,
  };

  var api = (window.tickchart = {
    symbol: state.symbol,
    tf: state.tf,
    lastCandle: null,
    candleCount: 0,
    status: 'connecting',
  });

  // ---- Time formatting ---------------------------------------------------------------

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

  // {year, month, day, weekday, hour, minute, second} of epoch seconds `t` in `zone`.
  function partsOf(t, zone) {
    var parts = formatter(zone, {
      year: 'numeric', month: 'short', day: '2-digit', weekday: 'short',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(new Date(t * 1000));
    var out = {};
    for (var i = 0; i < parts.length; i++) out[parts[i].type] = parts[i].value;
    return out;
  }

  // Daily bars are labelled by their UTC date; intraday bars by exchange-local time.
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
    switch (type) {
      case T.Year: return p.year;
      case T.Month: return p.month;
      case T.DayOfMonth: return p.day + ' ' + p.month;
      case T.Time: return p.hour + ':' + p.minute;
      case T.TimeWithSeconds: return p.hour + ':' + p.minute + ':' + p.second;
      default: return null;
    }
  }

  // ---- Chart -------------------------------------------------------------------------

  var chart = LC.createChart(chartEl, {
    autoSize: true,
    layout: {
      background: { type: LC.ColorType.Solid, color: COLORS.background },
      textColor: COLORS.text,
      panes: { separatorColor: COLORS.border },
    },
    grid: {
      vertLines: { color: COLORS.grid },
      horzLines: { color: COLORS.grid },
    },
    rightPriceScale: { borderColor: COLORS.border },
    timeScale: {
      borderColor: COLORS.border,
      timeVisible: !isDaily(state.tf),
      secondsVisible: hasSeconds(state.tf),
      barSpacing: DEFAULT_BAR_SPACING,
      maxBarSpacing: MAX_BAR_SPACING,
      tickMarkFormatter: function (time, type) {
        return tickMark(time, type);
      },
    },
    localization: {
      timeFormatter: function (time) {
        return formatFull(time);
      },
    },
    crosshair: { mode: LC.CrosshairMode.Normal },
  });

  var candleSeries = chart.addSeries(LC.CandlestickSeries, {
    upColor: COLORS.up,
    downColor: COLORS.down,
    borderUpColor: COLORS.up,
    borderDownColor: COLORS.down,
    wickUpColor: COLORS.up,
    wickDownColor: COLORS.down,
    priceFormat: priceFormatFor(config.candles || []),
  });
  var volumeSeries = chart.addSeries(
    LC.HistogramSeries,
    { priceFormat: { type: 'volume' }, priceLineVisible: false, lastValueVisible: true },
    1
  );
  var panes = chart.panes();
  if (panes.length > 1) {
    panes[0].setStretchFactor(3);
    panes[1].setStretchFactor(1);
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

  function volumeOf(bar) {
    return {
      time: bar.time,
      value: bar.volume,
      color: bar.close >= bar.open ? COLORS.upVolume : COLORS.downVolume,
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

  function setData(candles) {
    var bars = normalize(candles);
    candleSeries.setData(bars);
    volumeSeries.setData(bars.map(volumeOf));
    state.count = bars.length;
    state.lastTime = bars.length ? bars[bars.length - 1].time : null;
    state.lastCandle = bars.length ? bars[bars.length - 1] : null;
    state.prevClose = bars.length > 1 ? bars[bars.length - 2].close : null;
    fitView(bars.length);
    publish();
  }

  // Few bars: spread them over the width (up to MAX_BAR_SPACING each) instead of leaving
  // the left of the chart empty; enough bars: the default spacing, newest bar in view.
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

  // Applies one whole-candle snapshot: same time replaces the shown bar, a newer one is
  // appended, an older one is ignored.
  function applyCandle(c) {
    var bar = toBar(c);
    if (!isFinite(bar.time) || !isFinite(bar.close)) return;
    if (state.lastTime !== null && bar.time < state.lastTime) return;
    if (state.lastTime === null || bar.time > state.lastTime) {
      state.prevClose = state.lastCandle ? state.lastCandle.close : null;
      state.count += 1;
    }
    candleSeries.update(bar);
    volumeSeries.update(volumeOf(bar));
    state.lastTime = bar.time;
    state.lastCandle = bar;
    publish();
  }

  function publish() {
    api.symbol = state.symbol;
    api.tf = state.tf;
    api.lastCandle = state.lastCandle
      ? {
          time: state.lastCandle.time,
          open: state.lastCandle.open,
          high: state.lastCandle.high,
          low: state.lastCandle.low,
          close: state.lastCandle.close,
          volume: state.lastCandle.volume,
        }
      : null;
    api.candleCount = state.count;
    if (!state.hovering) showLegend(state.lastCandle, state.prevClose);
    if (state.lastCandle) {
      document.title = state.symbol + ' ' + formatPrice(state.lastCandle.close) + ' · ' + state.tf + ' · TickChart';
    }
  }

  // ---- Legend ------------------------------------------------------------------------

  var legendEl = document.getElementById('legend');
  var legendFields = {};
  if (legendEl) {
    legendEl.querySelectorAll('[data-field]').forEach(function (el) {
      legendFields[el.getAttribute('data-field')] = el;
    });
  }
  var volumeFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 });

  function formatPrice(v) {
    return candleSeries.priceFormatter().format(v);
  }

  function setField(name, text) {
    if (legendFields[name]) legendFields[name].textContent = text;
  }

  function showLegend(bar, prevClose) {
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
    var base = prevClose !== null && prevClose !== undefined ? prevClose : bar.open;
    var diff = bar.close - base;
    var pct = base ? (diff / base) * 100 : 0;
    setField('change', (diff >= 0 ? '+' : '') + formatPrice(diff) + ' (' + (diff >= 0 ? '+' : '') + pct.toFixed(2) + '%)');
    setField('volume', bar.volume === undefined ? '—' : volumeFormat.format(bar.volume));
    legendEl.setAttribute('data-direction', bar.close >= bar.open ? 'up' : 'down');
  }

  chart.subscribeCrosshairMove(function (param) {
    var ohlc = param && param.time !== undefined ? param.seriesData.get(candleSeries) : null;
    if (!ohlc || ohlc.open === undefined) {
      state.hovering = false;
      showLegend(state.lastCandle, state.prevClose);
      return;
    }
    state.hovering = true;
    var vol = param.seriesData.get(volumeSeries);
    var bar = {
      time: Number(ohlc.time),
      open: ohlc.open,
      high: ohlc.high,
      low: ohlc.low,
      close: ohlc.close,
      volume: vol ? vol.value : undefined,
    };
    var prev = null;
    if (param.logical !== undefined && param.logical > 0) {
      var before = candleSeries.dataByIndex(param.logical - 1);
      if (before && before.close !== undefined) prev = before.close;
    }
    showLegend(bar, prev);
  });

  // ---- Status ------------------------------------------------------------------------

  var statusEl = document.getElementById('status');

  function setStatus(status, detail) {
    document.body.dataset.status = status;
    api.status = status;
    if (statusEl) {
      statusEl.textContent = status;
      statusEl.setAttribute('data-status', status);
      if (detail) statusEl.title = detail;
      else statusEl.removeAttribute('title');
    }
  }

  // ---- WebSocket ---------------------------------------------------------------------

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
    var msg = { type: 'subscribe', symbol: state.symbol, tf: state.tf };
    if (state.lastTime !== null && !state.replaceOnSnapshot) msg.since = Math.floor(state.lastTime);
    if (send(msg)) {
      state.subscribed = { symbol: state.symbol, tf: state.tf };
      state.since = msg.since === undefined ? null : msg.since;
    }
  }

  function unsubscribe() {
    if (state.subscribed) {
      send({ type: 'unsubscribe', symbol: state.subscribed.symbol, tf: state.subscribed.tf });
      state.subscribed = null;
    }
  }

  function isCurrent(msg) {
    return msg.symbol === state.symbol && msg.tf === state.tf;
  }

  function onMessage(event) {
    var msg;
    try {
      msg = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'snapshot') {
      if (!isCurrent(msg)) return;
      var candles = normalize(msg.candles);
      // The snapshot starts at `since` (our last bar) unless we sent none, or we were
      // too far behind and the server sent the newest candles instead: then replace.
      var replace = state.replaceOnSnapshot || state.lastTime === null || state.since === null ||
        (candles.length > 0 && candles[0].time > state.since);
      if (replace) {
        state.replaceOnSnapshot = false;
        setData(candles);
      } else {
        candles.forEach(applyCandle);
      }
      state.attempts = 0;
      setStatus('live');
    } else if (msg.type === 'candle') {
      if (!isCurrent(msg) || !msg.candle || state.replaceOnSnapshot) return;
      applyCandle(msg.candle);
      if (api.status !== 'live') setStatus('live');
    } else if (msg.type === 'error') {
      // A refused request (bad symbol, bad tf...): shown on the badge, not thrown.
      console.warn('tickchart: server error:', msg.message);
      if (statusEl) statusEl.title = String(msg.message || 'server error');
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
      subscribe();
    };
    ws.onmessage = function (event) {
      if (state.ws !== ws) return;
      onMessage(event);
    };
    ws.onclose = function () {
      if (state.ws !== ws) return;
      state.ws = null;
      state.subscribed = null;
      if (!state.closing) scheduleReconnect();
    };
    ws.onerror = function () {
      // onclose follows and schedules the reconnect.
    };
  }

  function scheduleReconnect() {
    if (state.reconnectTimer !== null || state.closing) return;
    setStatus('reconnecting');
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
    // Back/forward cache: the page comes back without its socket.
    if (event.persisted && state.closing) {
      state.closing = false;
      setStatus('connecting');
      connect();
    }
  });

  // ---- Controls ----------------------------------------------------------------------

  function chartUrl(ticker, tf) {
    var path = '/chart/' + encodeURIComponent(ticker).replace(/%3A/gi, ':') + '/';
    return path + '?tf=' + encodeURIComponent(tf);
  }

  var symbolSelect = document.getElementById('symbol-select');
  if (symbolSelect) {
    symbolSelect.addEventListener('change', function () {
      if (symbolSelect.value && symbolSelect.value !== state.symbol) {
        window.location.assign(chartUrl(symbolSelect.value, state.tf));
      }
    });
  }

  var tfSelect = document.getElementById('tf-select');
  if (tfSelect) {
    tfSelect.addEventListener('change', function () {
      switchTimeframe(tfSelect.value);
    });
  }

  function candlesUrl(symbol, tf) {
    var url = new URL(config.api_candles || '/api/candles', window.location.href);
    url.searchParams.set('symbol', symbol);
    url.searchParams.set('tf', tf);
    return url.toString();
  }

  function switchTimeframe(tf) {
    if (!tf || tf === state.tf) return;
    unsubscribe();
    state.generation += 1;
    var generation = state.generation;
    state.tf = tf;
    state.replaceOnSnapshot = true; // ignore live updates until the new history is in
    chart.applyOptions({
      timeScale: { timeVisible: !isDaily(tf), secondsVisible: hasSeconds(tf) },
    });
    var url = new URL(window.location.href);
    url.searchParams.set('tf', tf);
    window.history.replaceState(window.history.state, '', url.toString());
    api.tf = tf;

    fetch(candlesUrl(state.symbol, tf), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (body) {
        if (generation !== state.generation) return;
        state.replaceOnSnapshot = false;
        setData(Array.isArray(body) ? body : body.candles || []);
        subscribe();
      })
      .catch(function (err) {
        if (generation !== state.generation) return;
        // No history from the API: let the subscription's snapshot fill the series.
        console.warn('tickchart: could not load candles for ' + tf + ':', err.message);
        state.replaceOnSnapshot = true;
        subscribe();
      });
  }

  // ---- Start -------------------------------------------------------------------------

  setData(config.candles || []);
  setStatus('connecting');
  connect();
})();

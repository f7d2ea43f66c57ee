/*
 * The WebSocket at config.ws_path: connect, reconnect with jittered backoff, subscribe (and
 * resume with `since` after a reconnect), flow control, and applying frames to the chart.
 *
 *   client -> {"type":"subscribe","symbol","tf","since"?}   {"type":"unsubscribe","symbol","tf"}
 *   server -> {"type":"snapshot","symbol","tf","candles":[...]}   (candles since `since`, inclusive)
 *             {"type":"candle","symbol","tf","candle":{time,open,high,low,close,volume,ticks}}
 *             {"type":"status","source","state","detail","heartbeat"}   {"type":"error","message"}
 *             {"type":"sync","seq"} / {"type":"behind","seq"} (answered with {"type":"ack","seq"}),
 *             {"type":"snapshot",...,"since","resync":true}   {"type":"caught_up"}   (slow-client flow control)
 *
 * Owns the socket, the backoff, what is subscribed and since when, and whether the next
 * snapshot replaces the bars (a timeframe switch). Daily frames also go to the watchlist.
 */
import { normalize } from './candles.js';

var BACKOFF_MIN_MS = 500;
var BACKOFF_MAX_MS = 10000;

// view: the chart view; status: static/market/js/status.js; watchlist: {message(msg),
// subscribeAll(), has(ticker)} (static/market/js/watchlist.js).
//
// hooks (optional, the studies, issue 11): {keys() (the chart's study keys, sent in
// subscribe), snapshot(studies, replaced) (a snapshot's {key: rows}), candle(time, values)
// (a candle frame's {key: value}), replacedWithout() (a snapshot without studies replaced
// the bars), badStudy(msg) (an error frame with code bad_study), user(msg) (a frame of the
// signed-in user's own: alert_event, alert), opened() (the socket (re)opened)}.
// A server that refuses the studies field itself (one without the studies protocol) gets
// subscribes without it from then on; the page still has the values over HTTP.
export function createSocket(config, view, status, watchlist, hooks) {
  var studiesRefused = false;
  var sentStudies = false;
  var ws = null;
  var attempts = 0;
  var reconnectTimer = null;
  var subscribed = null;
  var since = null;
  var replaceOnSnapshot = false;
  var closing = false;

  function socketUrl() {
    var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
    return scheme + window.location.host + (config.ws_path || '/ws/market/');
  }

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  function subscribe() {
    var last = view.lastBar();
    var msg = { type: 'subscribe', symbol: view.symbol, tf: view.tf };
    if (last && !replaceOnSnapshot) msg.since = Math.floor(last.time);
    var keys = hooks && !studiesRefused ? hooks.keys() : [];
    if (keys.length) msg.studies = keys;
    sentStudies = keys.length > 0;
    if (send(msg)) {
      subscribed = { symbol: view.symbol, tf: view.tf };
      since = msg.since === undefined ? null : msg.since;
    }
  }

  function unsubscribe() {
    var sub = subscribed;
    if (sub) {
      // The watchlist shares daily subscriptions: keep those.
      if (!(sub.tf === '1d' && watchlist.has(sub.symbol))) send({ type: 'unsubscribe', symbol: sub.symbol, tf: sub.tf });
      subscribed = null;
    }
  }

  function isCurrent(msg) {
    return msg.symbol === view.symbol && msg.tf === view.tf;
  }

  // A resync snapshot (the server caught a stream up after holding it): candles from
  // msg.since, inclusive, merged like a resume; the newest candles instead if too many.
  function applyResync(msg) {
    if (!isCurrent(msg) || replaceOnSnapshot) return; // a full snapshot is on its way
    var candles = normalize(msg.candles);
    var last = view.lastBar();
    if (!last || (candles.length > 0 && candles[0].time > msg.since)) view.setData(candles);
    else candles.forEach(view.applyCandle);
  }

  // Flow control (server side: market/core/outbox.py). Every sync (and the one behind) is
  // acked at once: about one small frame per 64 received.
  function onMessage(event) {
    var msg;
    try {
      msg = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'status') {
      status.onFeed(msg);
      return;
    }
    if (msg.type === 'sync' || msg.type === 'behind') {
      send({ type: 'ack', seq: msg.seq });
      if (msg.type === 'behind') status.setCatchingUp(true);
      return;
    }
    if (msg.type === 'caught_up') {
      status.setCatchingUp(false);
      return;
    }
    if (msg.type === 'alert_event' || msg.type === 'alert') { // the user's own (static/market/js/alerts.js)
      if (hooks && hooks.user) hooks.user(msg);
      return;
    }
    if (msg.type === 'snapshot' || msg.type === 'candle') watchlist.message(msg);
    if (msg.type === 'snapshot' && msg.resync) {
      applyResync(msg);
    } else if (msg.type === 'snapshot') {
      if (!isCurrent(msg)) return;
      if (status.catchingUp()) status.setCatchingUp(false); // a new connection starts in step
      var candles = normalize(msg.candles);
      var last = view.lastBar();
      var replace = replaceOnSnapshot || !last || since === null ||
        (candles.length > 0 && candles[0].time > since);
      if (replace) {
        replaceOnSnapshot = false;
        view.setData(candles);
      } else {
        candles.forEach(view.applyCandle);
      }
      if (hooks && msg.studies) hooks.snapshot(msg.studies, replace);
      else if (hooks && replace && hooks.keys().length) hooks.replacedWithout();
      attempts = 0;
      status.gotSnapshot = true;
      status.refresh();
    } else if (msg.type === 'candle') {
      if (!isCurrent(msg) || !msg.candle || replaceOnSnapshot) return;
      view.applyCandle(msg.candle);
      if (hooks && msg.studies) hooks.candle(Number(msg.candle.time), msg.studies);
    } else if (msg.type === 'error') {
      console.warn('tickchart: server error:', msg.message);
      if (hooks && msg.code === 'bad_study') {
        hooks.badStudy(msg);
      } else if (hooks && sentStudies && /studies/i.test(String(msg.message || ''))) {
        studiesRefused = true; // an older server: subscribe again without them
        subscribe();
      }
      status.serverError(msg, isCurrent(msg));
    }
  }

  function connect() {
    reconnectTimer = null;
    var socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = socket;
    subscribed = null;
    socket.onopen = function () {
      if (ws !== socket) return;
      status.socket = 'open';
      status.gotSnapshot = false;
      subscribe();
      watchlist.subscribeAll();
      status.refresh();
      if (hooks && hooks.opened) hooks.opened();
    };
    socket.onmessage = function (event) {
      if (ws !== socket) return;
      onMessage(event);
    };
    socket.onclose = function (event) {
      if (ws !== socket) return;
      var opened = status.socket === 'open';
      ws = null;
      subscribed = null;
      if (closing) return;
      // A handshake that never opened may have been refused (market.web.access): ask first.
      if ((config.sign_in_required && !opened) || event.code === 4401 || event.code === 4403) {
        checkAccess(event.code, scheduleReconnect);
      } else {
        scheduleReconnect();
      }
    };
    socket.onerror = function () { /* onclose follows and schedules the reconnect */ };
  }

  // A refused handshake shows a sign-in link instead of retrying (static/auth/access.js).
  function checkAccess(code, proceed) {
    window.tickchartAccess.check(code, config.api_session, status.showSignIn, proceed);
  }

  function scheduleReconnect() {
    if (reconnectTimer !== null || closing) return;
    status.socket = 'reconnecting';
    status.gotSnapshot = false;
    status.refresh();
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempts));
    delay = Math.max(BACKOFF_MIN_MS, Math.round(delay * (0.8 + Math.random() * 0.2)));
    attempts += 1;
    reconnectTimer = window.setTimeout(connect, delay);
  }

  window.addEventListener('pagehide', function () {
    closing = true;
    if (ws) ws.close(1000);
  });
  window.addEventListener('pageshow', function (event) {
    if (event.persisted && closing) {
      closing = false;
      status.socket = 'connecting';
      status.refresh();
      connect();
    }
  });

  return {
    connect: connect,
    send: send,
    subscribe: subscribe,
    unsubscribe: unsubscribe,
    // true: ignore live updates until a snapshot (or setData) replaces the bars.
    setReplaceOnSnapshot: function (on) { replaceOnSnapshot = on; },
  };
}

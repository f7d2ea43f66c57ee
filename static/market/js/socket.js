/*
 * The WebSocket at config.ws_path, shared by every chart of the page: connect, reconnect
 * with jittered backoff, flow control, and the streams it carries (one per chart: the
 * chart page has one, a layout one per pane; issue 12), each subscribed, resumed with
 * `since` after a reconnect and applying its frames to its chart.
 *
 *   client -> {"type":"subscribe","symbol","tf","since"?,"studies"?}   {"type":"unsubscribe","symbol","tf"}
 *   server -> {"type":"snapshot","symbol","tf","candles":[...]}   (candles since `since`, inclusive)
 *             {"type":"candle","symbol","tf","candle":{time,open,high,low,close,volume,ticks}}
 *             {"type":"status","source","state","detail","heartbeat"}   {"type":"error","message"}
 *             {"type":"sync","seq"} / {"type":"behind","seq"} (answered with {"type":"ack","seq"}),
 *             {"type":"snapshot",...,"since","resync":true}   {"type":"caught_up"}   (slow-client flow control)
 *
 * The server keeps one subscription per (symbol, tf) and socket, so streams of the same
 * pair share it: the subscribe carries the union of their studies, the snapshot it answers
 * replaces the bars of the stream that asked (the oldest asking first) and is merged into
 * the others, and the pair is unsubscribed when its last stream leaves.
 */
import { normalize } from './candles.js';

var BACKOFF_MIN_MS = 500;
var BACKOFF_MAX_MS = 10000;
var MAX_STUDIES = 8; // per subscription, as the server allows

function pairKey(symbol, tf) {
  return symbol + '|' + tf;
}

/*
 * The page's socket. status: static/market/js/status.js (one badge for the page);
 * hooks (all optional): {frame(msg) (every snapshot and candle frame: the watchlist),
 * opened() (after each open, once the streams subscribed: the watchlist's own),
 * keep(symbol, tf) (true: do not unsubscribe the pair, someone else still shows it),
 * other(msg) (frames of other modules: marker, drawing, alert_event, ...),
 * reopened() (open again after a drop: read again what frames may have missed)}.
 */
export function createConnection(config, status, hooks) {
  hooks = hooks || {};
  var ws = null;
  var attempts = 0;
  var reconnectTimer = null;
  var closing = false;
  var opens = 0;
  var streams = []; // in creation order
  var asking = {}; // pair -> streams whose subscribe awaits its snapshot, oldest first
  var subscribed = {}; // pair -> study keys the server was sent
  var connection = { studiesRefused: false, opens: 0 };

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

  function on(pair) {
    return streams.filter(function (s) { return s.pair() === pair; });
  }

  // The study keys of every stream showing `pair` (at most the server's limit).
  function unionKeys(pair, extra) {
    var keys = [];
    on(pair).concat(extra ? [extra] : []).forEach(function (s) {
      s.studyKeys().forEach(function (k) { if (keys.indexOf(k) < 0 && keys.length < MAX_STUDIES) keys.push(k); });
    });
    return connection.studiesRefused ? [] : keys;
  }

  // Subscribe `stream` to its pair; false when the socket is not open.
  function subscribe(stream, since) {
    var pair = stream.pair();
    var view = stream.view;
    var msg = { type: 'subscribe', symbol: view.symbol, tf: view.tf };
    if (since !== null) msg.since = since;
    var keys = unionKeys(pair, stream);
    if (keys.length) msg.studies = keys;
    if (!send(msg)) return false;
    subscribed[pair] = keys;
    (asking[pair] = asking[pair] || []).push(stream);
    return true;
  }

  // `stream` no longer shows `pair`: unsubscribe it when no other stream does.
  function release(stream, pair, symbol, tf) {
    if (asking[pair]) asking[pair] = asking[pair].filter(function (s) { return s !== stream; });
    if (!(pair in subscribed)) return;
    var others = on(pair).filter(function (s) { return s !== stream && s.active(); });
    if (others.length) return;
    delete subscribed[pair];
    if (hooks.keep && hooks.keep(symbol, tf)) return; // the watchlist shares daily subscriptions
    send({ type: 'unsubscribe', symbol: symbol, tf: tf });
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
    if (msg.type === 'candles') { // the candle frames of one server flush (hello batch)
      if (Array.isArray(msg.updates)) msg.updates.forEach(function (u) { if (u && typeof u === 'object') handle(u); });
      return;
    }
    handle(msg);
  }

  function handle(msg) {
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
    if ((msg.type === 'snapshot' || msg.type === 'candle') && hooks.frame) hooks.frame(msg);
    var pair = pairKey(msg.symbol, msg.tf);
    if (msg.type === 'snapshot') {
      var asker = msg.resync ? null : (asking[pair] || []).shift() || null;
      var shown = on(pair);
      shown.forEach(function (s) { s.snapshot(msg, s === asker); });
      if (shown.length) {
        attempts = 0;
        if (status.catchingUp() && !msg.resync) status.setCatchingUp(false); // a new connection starts in step
        status.gotSnapshot = true;
        status.refresh();
      }
    } else if (msg.type === 'candle') {
      on(pair).forEach(function (s) { s.candle(msg); });
    } else if (msg.type === 'error') {
      console.warn('tickchart: server error:', msg.message);
      var mine = msg.symbol !== undefined ? on(pair) : [];
      if (msg.code === 'bad_study') {
        if (asking[pair]) asking[pair].shift(); // that subscribe got no snapshot
        mine.forEach(function (s) { s.badStudy(msg); });
      } else if (!connection.studiesRefused && /studies/i.test(String(msg.message || '')) &&
                 Object.keys(subscribed).some(function (p) { return subscribed[p].length; })) {
        connection.studiesRefused = true; // an older server: subscribe again without them
        streams.forEach(function (s) { if (s.active()) s.subscribe(); });
      }
      status.serverError(msg, mine.length > 0);
    } else if (hooks.other) {
      hooks.other(msg); // frames of other modules: marker, drawing, alert_event, ...
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
    asking = {};
    subscribed = {};
    socket.onopen = function () {
      if (ws !== socket) return;
      if (opens++ && hooks.reopened) hooks.reopened(); // frames may have been missed meanwhile
      connection.opens = opens;
      status.socket = 'open';
      status.gotSnapshot = false;
      send({ type: 'hello', batch: true }); // we unpack candles frames (market/web/protocol.py)
      streams.forEach(function (s) { s.opened(); });
      if (hooks.opened) hooks.opened();
      status.refresh();
    };
    socket.onmessage = function (event) {
      if (ws !== socket) return;
      onMessage(event);
    };
    socket.onclose = function (event) {
      if (ws !== socket) return;
      var opened = status.socket === 'open';
      ws = null;
      asking = {};
      subscribed = {};
      streams.forEach(function (s) { s.closed(); });
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

  connection.connect = connect;
  connection.send = send;
  connection.isOpen = function () { return !!ws && ws.readyState === WebSocket.OPEN; };
  connection.subscribe = subscribe;
  connection.release = release;
  connection.add = function (s) { streams.push(s); };
  connection.remove = function (s) { streams = streams.filter(function (x) { return x !== s; }); };
  return connection;
}

/*
 * One chart's stream on the connection: what it shows (view.symbol, view.tf), since when,
 * and whether the next snapshot replaces the bars (a timeframe switch).
 *
 * hooks (optional, the studies, issue 11): {keys() (the chart's study keys, sent in
 * subscribe), snapshot(studies, replaced) (a snapshot's {key: rows}), candle(time, values)
 * (a candle frame's {key: value}), replacedWithout() (a snapshot without studies replaced
 * the bars), badStudy(msg) (an error frame with code bad_study)}.
 */
export function createStream(connection, view, hooks) {
  hooks = hooks || {};
  var subscribed = null; // {symbol, tf, pair} the server was asked for
  var since = null;
  var replaceOnSnapshot = false;
  var wanted = true; // subscribe on (re)open

  var stream = {
    view: view,
    pair: function () { return pairKey(view.symbol, view.tf); },
    active: function () { return subscribed !== null; },
    studyKeys: function () { return hooks.keys ? hooks.keys() : []; },
  };

  function subscribe() {
    wanted = true;
    var last = view.lastBar();
    var from = last && !replaceOnSnapshot ? Math.floor(last.time) : null;
    if (connection.subscribe(stream, from)) {
      subscribed = { symbol: view.symbol, tf: view.tf, pair: stream.pair() };
      since = from;
    }
  }

  function unsubscribe() {
    wanted = false;
    var sub = subscribed;
    if (!sub) return;
    subscribed = null;
    connection.release(stream, sub.pair, sub.symbol, sub.tf);
  }

  function isCurrent(msg) {
    return msg.symbol === view.symbol && msg.tf === view.tf;
  }

  // A resync snapshot (the server caught a stream up after holding it): candles from
  // msg.since, inclusive, merged like a resume; the newest candles instead if too many.
  function applyResync(msg) {
    if (replaceOnSnapshot) return; // a full snapshot is on its way
    var candles = normalize(msg.candles);
    var last = view.lastBar();
    if (!last || (candles.length > 0 && candles[0].time > msg.since)) view.setData(candles);
    else candles.forEach(view.applyCandle);
  }

  // A snapshot of this stream's pair; `asked`: the answer to this stream's own subscribe
  // (another stream's is merged, never replaces what this one shows).
  stream.snapshot = function (msg, asked) {
    if (!isCurrent(msg) || subscribed === null) return;
    if (msg.resync) {
      applyResync(msg);
      return;
    }
    if (!asked && replaceOnSnapshot) return; // this stream's own snapshot is still to come
    var candles = normalize(msg.candles);
    var last = view.lastBar();
    var replace = asked && (replaceOnSnapshot || !last || since === null ||
      (candles.length > 0 && candles[0].time > since));
    if (replace) {
      replaceOnSnapshot = false;
      view.setData(candles);
    } else {
      candles.forEach(view.applyCandle);
    }
    if (msg.studies && hooks.snapshot) hooks.snapshot(msg.studies, replace);
    else if (replace && hooks.replacedWithout && stream.studyKeys().length) hooks.replacedWithout();
  };

  stream.candle = function (msg) {
    if (!isCurrent(msg) || !msg.candle || replaceOnSnapshot || subscribed === null) return;
    view.applyCandle(msg.candle);
    if (msg.studies && hooks.candle) hooks.candle(Number(msg.candle.time), msg.studies);
  };

  stream.badStudy = function (msg) {
    if (hooks.badStudy) hooks.badStudy(msg);
  };

  stream.opened = function () {
    subscribed = null;
    if (wanted) subscribe();
  };

  stream.closed = function () {
    subscribed = null;
  };

  // Leave the socket (the chart goes away).
  stream.close = function () {
    unsubscribe();
    connection.remove(stream);
  };

  stream.subscribe = subscribe;
  stream.unsubscribe = unsubscribe;
  // true: ignore live updates until a snapshot (or setData) replaces the bars.
  stream.setReplaceOnSnapshot = function (on) { replaceOnSnapshot = on; };
  connection.add(stream);
  return stream;
}

/*
 * The chart page's socket: the connection with its one chart's stream. watchlist:
 * {message(msg), subscribeAll(), has(ticker)} (static/market/js/watchlist.js); hooks: the
 * stream's (above) and the connection's other(msg) and reopened().
 */
export function createSocket(config, view, status, watchlist, hooks) {
  hooks = hooks || {};
  var connection = createConnection(config, status, {
    frame: watchlist.message,
    opened: watchlist.subscribeAll,
    keep: function (symbol, tf) { return tf === '1d' && watchlist.has(symbol); },
    other: hooks.other,
    reopened: hooks.reopened,
  });
  var stream = createStream(connection, view, hooks);
  return {
    connection: connection, // for the page's other streams (compare.js)
    connect: connection.connect,
    send: connection.send,
    subscribe: stream.subscribe,
    unsubscribe: stream.unsubscribe,
    setReplaceOnSnapshot: stream.setReplaceOnSnapshot,
  };
}

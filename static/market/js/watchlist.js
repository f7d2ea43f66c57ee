/*
 * The watchlist (#watch-rows): saved tickers (localStorage; by default the first six of
 * config.symbols) with last price, change and % against the previous daily close, kept
 * live by 1d subscriptions over the chart's socket; add, remove, and the phone layout's
 * open/closed toggle.
 */
import { normalize, toBar } from './candles.js';
import { storageGet, storageSet, WATCH_KEY } from './storage.js';

// view: the chart view (symbol, tf); send(msg): over the socket; hrefFor(ticker): the
// chart link of a row; chooseSymbol(ticker): a row was clicked.
export function createWatchlist(config, view, send, hrefFor, chooseSymbol) {
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
    if (ticker === view.symbol) tr.setAttribute('aria-current', 'true');
    var sym = document.createElement('td');
    var link = document.createElement('a');
    link.href = hrefFor(ticker);
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

  // Every snapshot and candle frame; the daily ones of a listed ticker update its row.
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

  // On every (re)connect. The chart's own subscription covers its symbol on 1d.
  function watchSubscribeAll() {
    watch.tickers.forEach(function (t) {
      if (!(view.tf === '1d' && t === view.symbol)) watchSubscribe(t);
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
    if (!(view.tf === '1d' && ticker === view.symbol)) send({ type: 'unsubscribe', symbol: ticker, tf: '1d' });
    saveWatchlist();
    updateWatchAdd();
  }

  // The "+ SYMBOL" button and the rows' links (they keep the shown timeframe).
  function updateWatchAdd() {
    if (watchAdd) watchAdd.hidden = !!watch.rows[view.symbol];
    document.querySelectorAll('.watch-link').forEach(function (a) {
      a.href = hrefFor(a.textContent);
    });
  }

  if (watchBody) {
    loadWatchlist().forEach(function (t) { addWatch(t, false); });
    updateWatchAdd();
    if (watchAdd) {
      watchAdd.addEventListener('click', function () {
        addWatch(view.symbol, true);
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

  return {
    message: watchMessage,
    subscribeAll: watchSubscribeAll,
    has: function (ticker) { return !!watch.rows[ticker]; },
    updateAdd: updateWatchAdd,
  };
}

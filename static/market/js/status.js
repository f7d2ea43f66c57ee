/*
 * The status badge (#status) and document.body.dataset.status: 'connecting' | 'live' |
 * 'stale' | 'reconnecting' | 'market_closed' | 'token_expired' | 'stopped' (and
 * 'signed_out'), from the socket's state (written by static/market/js/socket.js), the
 * feed's last status frame and its heartbeat, and the exchange session. Also "catching up"
 * while the server holds our frames, server errors, and the sign-in link.
 *
 * The exchange calendar (GET /api/market/status, market/web/calendar.py) knows weekends,
 * holidays and special sessions the regular hours do not: its answer marks the market
 * closed on a holiday, and when the feed reports market_closed the badge says when it
 * opens ("market closed — opens Mon 09 Nov 09:15", exchange-local). Asked again when the
 * feed reports market_closed and when its answer runs out (the session closes or the
 * next open arrives).
 */
import { marketClosed } from './time.js';

var STALE_MS = 15000;
var STATUS_TEXT = { market_closed: 'market closed', token_expired: 'token expired' };
var MARKET_STATUS_URL = '/api/market/status';
var MARKET_RETRY_MS = 30000; // at most this often when the calendar's answer ran out

// The chart page's exchange and zone (its config, rendered by the view), or nulls.
function pageExchange() {
  var el = document.getElementById('chart-config');
  if (!el) return { exchange: null, tz: 'UTC' };
  try {
    var config = JSON.parse(el.textContent);
    return { exchange: config.exchange || null, tz: config.tz || 'UTC' };
  } catch (err) {
    return { exchange: null, tz: 'UTC' };
  }
}

var opensFormat = {};
function formatOpens(t, tz) {
  if (!opensFormat[tz]) {
    opensFormat[tz] = new Intl.DateTimeFormat('en-GB', {
      timeZone: tz, weekday: 'short', day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit',
      hourCycle: 'h23',
    });
  }
  return opensFormat[tz].format(new Date(t * 1000)).replace(',', '');
}

// session: the exchange's (config.session) or null; api: window.tickchart.
export function createStatus(statusEl, session, api) {
  var status = {
    socket: 'connecting', // connecting | open | reconnecting | signed_out
    gotSnapshot: false, // of the shown symbol and timeframe, on this connection
  };
  var feed = null; // last status frame
  var heartbeatAt = null; // client time the feed's heartbeat last changed
  var catchUpTimer = null;
  var page = pageExchange();
  var market = null; // the calendar's last answer for page.exchange
  var marketAskedAt = -Infinity; // client ms of the last request
  var marketPending = false;
  var shownText = null; // the badge text refresh() last set

  function askMarket() {
    if (!page.exchange || marketPending || typeof fetch !== 'function') return;
    marketPending = true;
    marketAskedAt = Date.now();
    fetch(MARKET_STATUS_URL + '?exchange=' + encodeURIComponent(page.exchange), {
      credentials: 'same-origin', headers: { Accept: 'application/json' },
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
      marketPending = false;
      market = body && typeof body.open === 'boolean' ? body : null;
      api.market = market;
      api.status = null; // repaint the badge
      refresh();
    }, function () { marketPending = false; });
  }

  // The calendar says closed now (true), open (false), or its answer ran out / is missing (null).
  function calendarClosed(now) {
    if (!market) return null;
    if (market.open) return market.session && now < market.session.close ? false : null;
    return market.next_open === null || now < market.next_open ? true : null;
  }

  function computeStatus() {
    if (status.socket !== 'open') return status.socket;
    if (feed && ['reconnecting', 'token_expired', 'stopped', 'stale', 'market_closed'].indexOf(feed.state) >= 0) {
      return feed.state;
    }
    if (feed && heartbeatAt !== null && Date.now() - heartbeatAt > STALE_MS) return 'stale';
    var now = Date.now() / 1000;
    var closed = calendarClosed(now);
    if (closed === null && market && Date.now() - marketAskedAt > MARKET_RETRY_MS) askMarket();
    if (closed === true || (closed === null && marketClosed(now, session))) return 'market_closed';
    if (feed && feed.state === 'starting') return 'connecting';
    return status.gotSnapshot ? 'live' : 'connecting';
  }

  function badgeText(current) {
    if (current === 'market_closed' && feed && feed.state === 'market_closed' && market && !market.open
        && market.next_open) {
      return 'market closed — opens ' + formatOpens(market.next_open, page.tz);
    }
    return STATUS_TEXT[current] || current;
  }

  function refresh() {
    var current = computeStatus();
    var text = badgeText(current);
    if (current === api.status && document.body.dataset.status === current && text === shownText) return;
    shownText = text;
    document.body.dataset.status = current;
    api.status = current;
    if (statusEl) {
      statusEl.textContent = text;
      statusEl.setAttribute('data-status', current);
      if (feed && feed.detail) statusEl.title = feed.detail;
    }
  }

  // A {"type":"status"} frame.
  function onFeed(msg) {
    if (!feed || feed.heartbeat !== msg.heartbeat) heartbeatAt = Date.now();
    if (msg.state === 'market_closed' && (!feed || feed.state !== 'market_closed')) askMarket();
    feed = { source: msg.source, state: msg.state, detail: msg.detail, heartbeat: msg.heartbeat };
    api.feed = feed;
    refresh();
  }

  // While the server holds our live frames the badge says "catching up"; only after a
  // second, since a page load (many snapshots at once) can be behind for a moment.
  function setCatchingUp(on) {
    if (catchUpTimer) window.clearTimeout(catchUpTimer);
    catchUpTimer = null;
    api.catchingUp = on;
    if (on) {
      catchUpTimer = window.setTimeout(function () {
        catchUpTimer = null;
        document.body.dataset.catchingUp = 'true';
        if (statusEl) statusEl.textContent = 'catching up';
      }, 1000);
    } else if (document.body.dataset.catchingUp === 'true') {
      delete document.body.dataset.catchingUp;
      api.status = null; // repaint the badge
      refresh();
    }
  }

  // A {"type":"error"} frame; `current`: it is about the shown symbol and timeframe.
  function serverError(msg, current) {
    api.lastError = { code: msg.code || null, symbol: msg.symbol, tf: msg.tf, message: String(msg.message || '') };
    if (statusEl) statusEl.title = String(msg.message || 'server error');
    // Past the vendor's symbol limit: history is shown, live updates are not (yet).
    if (msg.code === 'symbol_limit' && current && statusEl) statusEl.textContent = 'not live: symbol limit';
  }

  // A refused handshake: a sign-in link instead of retrying (static/auth/access.js).
  function showSignIn(loginUrl) {
    status.socket = 'signed_out';
    refresh();
    if (statusEl) statusEl.textContent = 'signed out';
    if (document.getElementById('sign-in') || !statusEl) return;
    var link = document.createElement('a');
    link.id = 'sign-in';
    link.className = 'small-btn';
    link.href = window.tickchartAccess.signInHref(loginUrl);
    link.textContent = 'Sign in';
    statusEl.parentNode.insertBefore(link, statusEl.nextSibling);
  }

  askMarket();
  status.refresh = refresh;
  status.onFeed = onFeed;
  status.setCatchingUp = setCatchingUp;
  status.catchingUp = function () { return api.catchingUp; };
  status.serverError = serverError;
  status.showSignIn = showSignIn;
  return status;
}

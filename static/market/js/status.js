/*
 * The status badge (#status) and document.body.dataset.status: 'connecting' | 'live' |
 * 'stale' | 'reconnecting' | 'market_closed' | 'token_expired' | 'stopped' (and
 * 'signed_out'), from the socket's state (written by static/market/js/socket.js), the
 * feed's last status frame and its heartbeat, and the exchange session. Also "catching up"
 * while the server holds our frames, server errors, and the sign-in link.
 */
import { marketClosed } from './time.js';

var STALE_MS = 15000;
var STATUS_TEXT = { market_closed: 'market closed', token_expired: 'token expired' };

// session: the exchange's (config.session) or null; api: window.tickchart.
export function createStatus(statusEl, session, api) {
  var status = {
    socket: 'connecting', // connecting | open | reconnecting | signed_out
    gotSnapshot: false, // of the shown symbol and timeframe, on this connection
  };
  var feed = null; // last status frame
  var heartbeatAt = null; // client time the feed's heartbeat last changed
  var catchUpTimer = null;

  function computeStatus() {
    if (status.socket !== 'open') return status.socket;
    if (feed && ['reconnecting', 'token_expired', 'stopped', 'stale', 'market_closed'].indexOf(feed.state) >= 0) {
      return feed.state;
    }
    if (feed && heartbeatAt !== null && Date.now() - heartbeatAt > STALE_MS) return 'stale';
    if (marketClosed(Date.now() / 1000, session)) return 'market_closed';
    if (feed && feed.state === 'starting') return 'connecting';
    return status.gotSnapshot ? 'live' : 'connecting';
  }

  function refresh() {
    var current = computeStatus();
    if (current === api.status && document.body.dataset.status === current) return;
    document.body.dataset.status = current;
    api.status = current;
    if (statusEl) {
      statusEl.textContent = STATUS_TEXT[current] || current;
      statusEl.setAttribute('data-status', current);
      if (feed && feed.detail) statusEl.title = feed.detail;
    }
  }

  // A {"type":"status"} frame.
  function onFeed(msg) {
    if (!feed || feed.heartbeat !== msg.heartbeat) heartbeatAt = Date.now();
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

  status.refresh = refresh;
  status.onFeed = onFeed;
  status.setCatchingUp = setCatchingUp;
  status.catchingUp = function () { return api.catchingUp; };
  status.serverError = serverError;
  status.showSignIn = showSignIn;
  return status;
}

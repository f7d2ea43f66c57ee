/* Shared by the chart and pulse pages: was a WebSocket refused for access (market.web.access)?
 * Daphne answers a refused handshake with HTTP 403, so a page sees only close code 1006;
 * /api/session tells "signed out" (show a sign-in link, stop retrying) from "server down". */
(function () {
  'use strict';
  window.tickchartAccess = {
    check: function (code, sessionUrl, signedOut, proceed) {
      var refused = code === 4401 || code === 4403;
      window.fetch(sessionUrl || '/api/session', { credentials: 'same-origin' })
        .then(function (response) { return response.json(); })
        .then(function (info) {
          if (refused || info.may_read === false) signedOut(info.login_url);
          else proceed();
        })
        .catch(function () { if (refused) signedOut(); else proceed(); });
    },
    signInHref: function (loginUrl) {
      return (loginUrl || '/accounts/login/') + '?next=' +
        encodeURIComponent(window.location.pathname + window.location.search);
    }
  };
})();

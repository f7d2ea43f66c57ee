"""The Fyers connection: the access token and the supervised data socket.

Owns the token (the token file written by ``fyers_login``, else an unattended TOTP login;
a missing, expired or rejected token is the ``token_expired`` status and one log line,
then a wait for a new one: never a crash loop), the SDK socket
(``market.vendors.fyers.socket``) with its reconnect backoff, the "cn" authentication
timeout and the stall watchdog (no data for ``STALL_SECONDS`` while a market is open),
the raw-message recorder, and what is subscribed on the current connection.

What the messages mean for the symbols is the owner's (``SessionOwner``): the session
hands it every live tick and asks it which symbols to subscribe.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Protocol

from market.conf import FyersConf
from market.core.types import Tick
from market.feed.base import FeedContext
from market.vendors.fyers.auth import LoginError, TokenStore, token_expiry, totp_login
from market.vendors.fyers.recorder import Recorder
from market.vendors.fyers.socket import CLOSE, ERROR, MSG, PLAN_LIMIT_CODE, FyersSocket, Handoff, error_code

logger = logging.getLogger("market.feed")

AUTH_TIMEOUT = 15.0          # seconds from open to the "cn" answer before we retry
YIELD_EVERY = 2000            # messages handled between yields to the event loop
TOKEN_MARGIN = 120.0         # re-login this long before the token's exp
TOKEN_POLL = 10.0            # how often to look for a new token file while waiting
RELOGIN_MIN_INTERVAL = 300.0  # TOTP login at most this often (never hammer the login)
TOKEN_ERROR_CODES = {-99, -300, 11001}  # expired, invalid, authentication failed
NAME_LIMIT = 20              # symbols named in a log line before "and N more"


class SessionOwner(Protocol):
    """What the session asks of the feed it serves."""

    def on_tick(self, tick: Tick) -> bool: ...  # True: a fresh tick (not a snapshot of an old trade)
    def on_reconnect(self) -> None: ...      # authenticated again after a drop, before subscribing
    def wanted(self) -> list[str]: ...       # the symbols to subscribe, in priority order
    def tend(self) -> None: ...              # once per pump round (a quarter second at most)
    def market_open(self) -> bool: ...      # does the exchange calendar expect data now?
    def live_detail(self) -> str: ...
    def closed_detail(self) -> str: ...     # "market closed (why); opens ..." for the badge


class FyersSession:
    def __init__(self, ctx: FeedContext, conf: FyersConf, owner: SessionOwner, limiter: Any = None) -> None:
        self.ctx = ctx
        self.conf = conf
        self.owner = owner
        self.limiter = limiter  # the app's REST budget: the SDK's symbol look-ups take it too
        self.store = TokenStore(conf.token_file)
        self.token: str | None = None
        self.token_saved_at = 0.0
        self.token_bad = False
        self._last_relogin = -math.inf
        self.socket: FyersSocket | None = None
        self.handoff: Handoff | None = None
        self.recorder: Recorder | None = None
        self.subscribed: set[str] = set()
        self.last_request: list[str] = []
        self.authed = False
        self.generation = 0
        self.connects = 0
        self.reconnects = 0
        self.stalls = 0
        self.last_data = time.monotonic()
        self.last_tick = -math.inf   # monotonic time of the last live tick (snapshots included)
        self._healthy = False
        self._sub_lock = asyncio.Lock()

    def start(self, record_dir: str | None) -> None:
        """In the running loop, before anything else: the hand-off queue, the recorder."""
        self.handoff = Handoff(asyncio.get_running_loop(), self.conf.queue_max)
        if record_dir:
            self.recorder = Recorder(record_dir)
            logger.info("recording raw Fyers messages to %s", record_dir)

    async def close(self) -> None:
        if self.socket is not None:
            await asyncio.to_thread(self.socket.close, False)
        if self.recorder is not None:
            self.recorder.close()

    # -- token -----------------------------------------------------------------------------
    def token_usable(self) -> bool:
        if not self.token or self.token_bad:
            return False
        exp = token_expiry(self.token)
        return exp is None or exp - TOKEN_MARGIN > time.time()

    async def wait_for_token(self, stop: asyncio.Event) -> bool:
        """Until a usable token is there: the file, else a TOTP login, else wait and say so."""
        told = False
        while not stop.is_set():
            stored = await asyncio.to_thread(self.store.load)
            if (stored is not None and stored.valid(time.time(), TOKEN_MARGIN)
                    and (not self.token_bad or stored.access_token != self.token)
                    and stored.client_id in ("", self.conf.client_id or stored.client_id)):
                self.token, self.token_saved_at, self.token_bad = stored.access_token, stored.saved_at, False
                if told:
                    logger.info("fyers: new access token found; connecting")
                return True
            if self.conf.totp_configured and time.monotonic() - self._last_relogin >= RELOGIN_MIN_INTERVAL:
                self._last_relogin = time.monotonic()
                try:
                    token = await asyncio.to_thread(
                        totp_login, client_id=self.conf.client_id, secret_key=self.conf.secret_key,
                        redirect_uri=self.conf.redirect_uri, user_id=self.conf.user_id, pin=self.conf.pin,
                        totp_secret=self.conf.totp_secret, api_base=self.conf.api_base,
                        login_base=self.conf.login_base)
                    saved = await asyncio.to_thread(self.store.save, token, self.conf.client_id)
                    self.token, self.token_saved_at, self.token_bad = token, saved.saved_at, False
                    logger.info("fyers: logged in with TOTP; token valid until %s", _when(saved.expires))
                    return True
                except (LoginError, OSError, ValueError) as exc:
                    logger.error("fyers: TOTP login failed: %s", exc)
                    self.ctx.set_status("token_expired", "Fyers TOTP login failed; see the feed log")
                    told = True
                except Exception as exc:  # noqa: BLE001 - requests errors and the like
                    logger.error("fyers: TOTP login failed: %s", type(exc).__name__)
                    self.ctx.set_status("token_expired", "Fyers TOTP login failed; see the feed log")
                    told = True
            elif not told:
                logger.error("fyers: no valid access token (missing, expired or rejected). Run "
                             "`manage.py fyers_login`%s; waiting for a new token in %s",
                             "" if self.conf.totp_configured else " (or set FYERS_USER_ID, FYERS_PIN and "
                             "FYERS_TOTP_SECRET for unattended login)", self.store.path)
                self.ctx.set_status("token_expired", "Fyers login needed: run manage.py fyers_login")
                told = True
            await wait(stop, TOKEN_POLL)
        return False

    def token_rejected(self, why: str) -> None:
        if not self.token_bad:
            logger.error("fyers: access token rejected (%s)", why)
        self.token_bad = True

    # -- the socket supervisor ---------------------------------------------------------------
    async def supervise(self, stop: asyncio.Event) -> None:
        backoff = self.conf.backoff_min
        while not stop.is_set():
            if not self.token_usable():
                if self.socket is not None:
                    await asyncio.to_thread(self.socket.close, False)
                if self.token and not self.token_bad:
                    logger.warning("fyers: access token expired at %s", _when(token_expiry(self.token)))
                if not await self.wait_for_token(stop):
                    return
            assert self.token is not None
            if self.socket is None:
                self.socket = FyersSocket(client_id=self.conf.client_id, access_token=self.token,
                                          handoff=self.handoff, log_dir=self.conf.log_dir,
                                          ws_url=self.conf.ws_url, api_base=self.conf.api_base,
                                          public_base=self.conf.public_base, limiter=self.limiter)
            self.socket.access_token = self.token
            self.authed = False
            self.subscribed = set()
            self.ctx.set_status("reconnecting" if self.connects else "starting", "connecting to Fyers")
            self.generation = await asyncio.to_thread(self.socket.open)
            self.connects += 1
            outcome = await self._pump(stop)
            if stop.is_set():
                return
            await asyncio.to_thread(self.socket.close, False)
            if outcome == "token":
                continue
            if self._healthy:  # the connection had worked for a while: start the backoff afresh
                backoff = self.conf.backoff_min
            self.reconnects += 1
            self.ctx.set_status("reconnecting", f"{outcome}; retrying in {backoff:.0f}s")
            logger.warning("fyers: %s; reconnecting in %.0fs", outcome, backoff)
            await wait(stop, backoff)
            backoff = min(self.conf.backoff_max, backoff * 2)

    async def _pump(self, stop: asyncio.Event) -> str:
        """Handle one connection's events; returns why it ended."""
        assert self.handoff is not None
        opened = time.monotonic()
        self.last_data = opened
        self._healthy = False
        while not stop.is_set():
            events = await self.handoff.get(timeout=0.25)
            now_m = time.monotonic()
            for i, event in enumerate(events):
                if i % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)  # a big burst must not starve the flusher
                if event.generation != self.generation:
                    continue  # late news from a closed connection
                if event.kind == MSG:
                    outcome = await self._on_message(event.payload)
                    if outcome:
                        return outcome
                elif event.kind == ERROR:
                    outcome = self._on_error(event.payload)
                    if outcome:
                        return outcome
                elif event.kind == CLOSE:
                    return "connection closed"
            if self.authed:
                self._healthy = self._healthy or now_m - opened > 60
            elif now_m - opened > AUTH_TIMEOUT:
                return "no authentication answer"
            if not self.token_usable():
                return "token"
            self.owner.tend()
            if self.authed and self.owner.market_open() and now_m - self.last_data > self.conf.stall_seconds:
                self.stalls += 1
                logger.warning("fyers: no data for %.0fs while the market is open; forcing a reconnect",
                               now_m - self.last_data)
                self.ctx.set_status("stale", f"no data for {now_m - self.last_data:.0f}s")
                return "stalled"
            if self.authed and not self.owner.market_open():
                # Closed by the calendar; ticks still flowing are an unscheduled session: live.
                unscheduled = now_m - self.last_tick < self.conf.stall_seconds
                if unscheduled and self.ctx.status == "market_closed":
                    self.ctx.set_status("live", "unscheduled session; " + self.owner.live_detail())
                elif not unscheduled and self.ctx.status != "market_closed":
                    self.ctx.set_status("market_closed", self.owner.closed_detail())
            elif self.authed and self.owner.market_open() and self.ctx.status == "market_closed":
                self.ctx.set_status("live", self.owner.live_detail())
        return "stopped"

    async def _on_message(self, message: Any) -> str | None:
        if self.recorder is not None:
            self.recorder.write(message)
        result = self.ctx.parse(message)
        if isinstance(result, Tick):
            self.last_data = time.monotonic()
            if self.owner.on_tick(result):
                self.last_tick = self.last_data
            return None
        if isinstance(message, dict) and message.get("type") == "cn":
            if message.get("code") == 200:
                await self._authenticated()
            else:
                self.token_rejected(str(message.get("message", ""))[:100])
                return "token"
        elif isinstance(message, dict) and message.get("type") in ("sub", "ful"):
            self.last_data = time.monotonic()
        return None

    def _on_error(self, payload: Any) -> str | None:
        code = error_code(payload)
        message = str(payload.get("message", "")) if isinstance(payload, dict) else type(payload).__name__
        if code == 11001 or (code in TOKEN_ERROR_CODES and "token" in message.lower()):
            self.token_rejected(f"{code}: {message[:100]}")
            self.ctx.set_status("token_expired", "Fyers rejected the access token: run manage.py fyers_login")
            return "token"
        if code == PLAN_LIMIT_CODE:
            logger.error("fyers: plan symbol limit reached (51001: %s). Subscribed %d symbols; the last "
                         "request's symbols may be left out: %s", message[:200], len(self.subscribed),
                         names(sorted(self.last_request)))
            self.ctx.set_status("live", f"Fyers plan symbol limit reached: {message[:80]}")
        elif isinstance(payload, dict) and payload.get("invalid_symbols"):
            logger.error("fyers: symbols Fyers does not know (not subscribed): %s",
                         names(list(payload["invalid_symbols"])))
        elif isinstance(payload, dict):
            logger.warning("fyers socket error %s: %s", code, message[:200])
        else:
            logger.info("fyers socket: %s", message)
        return None

    async def _authenticated(self) -> None:
        self.authed = True
        self.last_data = time.monotonic()
        if self.connects > 1:
            self.owner.on_reconnect()
        await self.subscribe_all()
        if self.owner.market_open():
            self.ctx.set_status("live", self.owner.live_detail())
        else:
            self.ctx.set_status("market_closed", self.owner.closed_detail())
        logger.info("fyers: authenticated (connection %d); subscribed %d symbols", self.connects,
                    len(self.subscribed))

    # -- subscriptions on the current connection ------------------------------------------------
    async def subscribe_all(self) -> None:
        async with self._sub_lock:
            wanted = self.owner.wanted()
            if wanted and self.socket is not None:
                self.last_request = wanted
                await asyncio.to_thread(self.socket.subscribe, wanted)
            self.subscribed = set(wanted)

    async def apply_changes(self) -> None:
        """Subscribe symbols added in the admin, unsubscribe deactivated ones (live socket)."""
        if not self.authed or self.socket is None:
            return
        async with self._sub_lock:
            wanted = set(self.owner.wanted())
            added = sorted(wanted - self.subscribed)
            removed = sorted(self.subscribed - wanted)
            # Unsubscribe first: the socket never holds more than the cap, even for a moment
            # (a freed slot handed to a waiting viewer, or a plan limit below MAX_SYMBOLS).
            if removed:
                await asyncio.to_thread(self.socket.unsubscribe, removed)
                logger.info("fyers: unsubscribed %s", names(removed))
            if added:
                self.last_request = added
                await asyncio.to_thread(self.socket.subscribe, added)
                logger.info("fyers: subscribed %s", names(added))
            self.subscribed = wanted
            if added or removed:
                self.ctx.set_status(self.ctx.status if self.ctx.status != "starting" else "live",
                                    self.owner.live_detail())


def names(symbols: list[str]) -> str:
    """``symbols`` for a log line: the first ``NAME_LIMIT``, then "and N more"."""
    shown = ", ".join(symbols[:NAME_LIMIT])
    return shown + (f" and {len(symbols) - NAME_LIMIT} more" if len(symbols) > NAME_LIMIT else "")


async def wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except asyncio.TimeoutError:
        pass


def _when(t: float | None) -> str:
    if t is None:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))

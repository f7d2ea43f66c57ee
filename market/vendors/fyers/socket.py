"""A supervised wrapper around fyers-apiv3's data socket (``FyersDataSocket``).

What the SDK does (3.2.0 source) and what this wrapper does about it:

* Callbacks run on the SDK's own thread. ``Handoff`` takes each message with one short
  lock, appends it to a bounded buffer and wakes the asyncio loop at most once per batch
  (``call_soon_threadsafe``): the SDK thread never waits for our work, and a burst can
  not grow memory without bound (oldest messages are dropped, counted and logged).
* ``connect()`` sleeps 2 s and calls ``on_connect`` even when authentication failed, and
  its reconnect forgets every subscription, never calls ``on_close`` and goes silent when
  its retries run out. So the SDK's own reconnect is off (``reconnect=False``: a drop
  always reaches ``on_close``) and the feed supervises: subscribe only on
  ``{"type": "cn", "code": 200}``, reconnect with backoff, re-subscribe every time, and
  a stall watchdog for a socket that stays open but stops talking.
* It is a process singleton, so there is one ``FyersSocket`` and each (re)connect
  re-initialises the same SDK object; a generation number tags every callback so late
  events of an old connection are ignored.
* ``subscribe``/``unsubscribe``/``close_connection`` block (REST symbol look-up, a 0.5 s
  sleep per chunk, thread joins): the feed calls them in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("market.fyers")

MSG, ERROR, CLOSE = "msg", "error", "close"
MAX_SUBSCRIPTION = 5000  # the SDK's hard cap per socket
PLAN_LIMIT_CODE = 51001  # server custom message: the plan's symbol limit was reached


@dataclass(slots=True)
class Event:
    kind: str          # msg | error | close
    generation: int
    payload: Any


class Handoff:
    """SDK thread → asyncio: bounded, never blocking the producer, overflow counted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = 200_000) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        self._loop = loop
        self.maxsize = maxsize
        self._buf: deque[Event] = deque()
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._scheduled = False
        self.received = 0
        self.dropped = 0
        self.high_water = 0

    def put(self, event: Event) -> None:
        """Called on the SDK thread: O(1), one uncontended lock, no waiting on asyncio."""
        with self._lock:
            self.received += 1
            if len(self._buf) >= self.maxsize:
                self._buf.popleft()
                self.dropped += 1
            self._buf.append(event)
            if len(self._buf) > self.high_water:
                self.high_water = len(self._buf)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # loop closed while the SDK thread was still talking
            pass

    def drain(self) -> list[Event]:
        with self._lock:
            items = list(self._buf)
            self._buf.clear()
            self._scheduled = False
            self._wake.clear()
        return items

    async def get(self, timeout: float | None = None) -> list[Event]:
        """The next batch (maybe empty after ``timeout``)."""
        if not self._buf:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.drain()

    def __len__(self) -> int:
        return len(self._buf)


class FyersSocket:
    """Opens, subscribes and closes the SDK socket; all blocking calls are plain methods
    meant for ``asyncio.to_thread``."""

    def __init__(
        self, *, client_id: str, access_token: str, handoff: Handoff, log_dir: str | Path,
        ws_url: str | None = None, api_base: str | None = None, public_base: str | None = None,
        limiter: Any = None,
    ) -> None:
        self.client_id = client_id
        self.access_token = access_token
        self.handoff = handoff
        self.log_dir = Path(log_dir)
        self.ws_url = ws_url
        self.api_base = api_base
        self.public_base = public_base
        self.limiter = limiter  # ratelimit.RateLimiter: the SDK's own REST calls count too
        self.generation = 0
        self._sdk: Any = None
        self._lock = threading.Lock()

    # -- SDK callbacks (SDK thread) ----------------------------------------------------
    def _callbacks(self, generation: int) -> dict[str, Any]:
        put = self.handoff.put
        return {
            "on_message": lambda m: put(Event(MSG, generation, m)),
            "on_error": lambda m: put(Event(ERROR, generation, m)),
            "on_close": lambda m: put(Event(CLOSE, generation, m)),
            "on_connect": lambda: None,  # meaningless: called after 2 s even if auth failed
        }

    def _point_sdk(self, data_ws: Any) -> None:
        """The SDK's endpoints are module constants (loopback servers in tests, proxies), and
        its ``/data/symbol-token`` calls (one per 500 symbols of every subscribe and
        unsubscribe) are REST calls of the app like any other: they take the shared budget
        (``limiter``) first. One subclass of ``SymbolConversion`` does both."""
        original = data_ws.SymbolConversion
        if not getattr(original, "_tickchart", False):
            class SymbolConversion(original):  # type: ignore[misc, valid-type]
                _tickchart = True
                api_base: str | None = None
                limiter: Any = None

                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    super().__init__(*args, **kwargs)
                    if type(self).api_base:
                        self.symbols_token_api = f"{type(self).api_base}/data/symbol-token"

                def symbol_to_hsmtoken(self, symbols: list) -> Any:
                    limiter = type(self).limiter
                    if limiter is not None:
                        try:
                            limiter.acquire()
                        except Exception as exc:  # noqa: BLE001 - DayExhausted: the SDK would only log it
                            logger.error("fyers: symbol look-up for %d symbols not sent: %s", len(symbols), exc)
                            return {}, [], False, str(exc)
                    try:
                        return super().symbol_to_hsmtoken(symbols)
                    finally:
                        if limiter is not None:
                            limiter.done()

            data_ws.SymbolConversion = original = SymbolConversion
        original.api_base = self.api_base.rstrip("/") if self.api_base else None
        original.limiter = self.limiter
        if self.public_base:
            base = self.public_base.rstrip("/")
            data_ws.defines.INDEX_HSM_MAPPING_API = f"{base}/sym_details/index_hsm_mapping.json"

    def open(self) -> int:
        """(Re)create the SDK socket and start connecting; returns the new generation."""
        from fyers_apiv3.FyersWebsocket import data_ws

        with self._lock:
            self.generation += 1
            generation = self.generation
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._point_sdk(data_ws)
            # A fresh SDK object per connection: the class is a singleton, and re-initialising
            # the object an old connection's threads still use would corrupt both.
            data_ws.FyersDataSocket._instance = None
            sdk = data_ws.FyersDataSocket(
                access_token=f"{self.client_id}:{self.access_token}", write_to_file=False,
                log_path=str(self.log_dir), litemode=False, reconnect=False, **self._callbacks(generation),
            )
            if self.ws_url:
                sdk._FyersDataSocket__url = self.ws_url
            _prune_sdk_log_handlers()
            old, self._sdk = self._sdk, sdk
        if old is not None:
            _close_in_background(old)
        sdk.connect()  # blocks ~2 s (SDK sleep); the auth answer arrives as a "cn" message
        return generation

    def subscribe(self, symbols: list[str]) -> None:
        if self._sdk is not None and symbols:
            self._sdk.subscribe(symbols=list(symbols), data_type="SymbolUpdate")

    def unsubscribe(self, symbols: list[str]) -> None:
        """The SDK (3.2.0) only sends symbols of its *last* ``subscribe`` call on the channel
        (``scrips_count``), and drops the others by removing them from the list it iterates,
        which skips every other one: of 20 symbols subscribed earlier, 10 were unsubscribed
        and 10 kept streaming. Subscribing them again first does not help at the cap: the
        SDK counts the already subscribed symbols a second time (4,990 + 20 > 5,000) and
        refuses. So the last-call list is pointed at everything the SDK has subscribed
        (``symbol_token``, which the unsubscribe answer's bookkeeping removes from): the
        filter then keeps every symbol, and one look-up per 500 symbols is the only REST."""
        sdk = self._sdk
        if sdk is None or not symbols:
            return
        try:
            sdk.scrips_count[11] = dict.fromkeys(sdk.symbol_token)
        except (AttributeError, TypeError):  # another SDK version: its own unsubscribe as it is
            logger.warning("fyers: unknown SDK bookkeeping; unsubscribing %d symbols as the SDK does", len(symbols))
        sdk.unsubscribe(symbols=list(symbols), data_type="SymbolUpdate")

    def close(self, wait: bool = True) -> None:
        """Close the current connection. ``close_connection`` joins the SDK's ping thread,
        which sleeps 10 s between pings, so without ``wait`` it finishes in the background."""
        with self._lock:
            sdk, self._sdk = self._sdk, None
        if sdk is None:
            return
        if wait:
            _close_quietly(sdk)
        else:
            _close_in_background(sdk)

    def connected(self) -> bool:
        return self._sdk is not None and bool(self._sdk.is_connected())


def _close_quietly(sdk: Any) -> None:
    try:
        sdk.close_connection()
    except Exception as exc:  # noqa: BLE001 - closing a half-dead socket must not raise
        logger.debug("closing the Fyers socket: %s", type(exc).__name__)


def _close_in_background(sdk: Any) -> None:
    threading.Thread(target=_close_quietly, args=(sdk,), name="fyers-close", daemon=True).start()


def _prune_sdk_log_handlers() -> None:
    """Each SDK re-init adds a FileHandler to the same named logger; keep the newest only,
    so weeks of reconnects do not leak file descriptors."""
    for name in ("FyersDataSocket",):
        log = logging.getLogger(name)
        files = [h for h in log.handlers if isinstance(h, logging.FileHandler)]
        for h in files[:-1]:
            log.removeHandler(h)
            h.close()


def error_code(payload: Any) -> int | None:
    if isinstance(payload, dict):
        code = payload.get("code")
        return code if isinstance(code, int) else None
    return None

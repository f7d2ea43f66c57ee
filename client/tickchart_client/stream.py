"""Live candles from ``/ws/market/`` as an async iterator that survives disconnects.

Every candle state the server sends is yielded once: a reconnect subscribes again with
``since`` = the newest candle already yielded (inclusive, so a bar still forming is
brought up to date), and states already yielded are skipped. If the server could not send
everything since then in one snapshot (it sends the newest page instead), the gap is read
over HTTP first, so the iterator never skips a candle.

Flow control: the server sends ``sync {seq}`` frames and holds live frames for a client that
does not acknowledge them; this one answers each with ``ack``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from tickchart_client.client import PAGE, flatten_studies

if TYPE_CHECKING:  # pragma: no cover
    from tickchart_client.client import Client

logger = logging.getLogger("tickchart_client")

MEMORY = 4096  # candle states remembered per stream to recognise a repeat
TRANSIENT = {"rate_limited"}  # error codes that do not end a stream


class StreamError(Exception):
    """The server refused a stream for good (unknown symbol, bad study, limits, access)."""


@dataclass(frozen=True)
class Update:
    """One candle state: a new bar, a forming bar's update, or a revision."""

    symbol: str
    tf: str
    candle: dict[str, Any]
    studies: dict[str, Any] | None = None

    @property
    def time(self) -> int:
        return int(self.candle["time"])


@dataclass
class _Stream:
    symbol: str
    mark: int | None  # the newest candle time yielded (None: nothing yet)
    seen: OrderedDict = field(default_factory=OrderedDict)  # time -> last state yielded

    def fresh(self, candle: dict[str, Any]) -> bool:
        """Whether ``candle`` is a state not yielded yet (and remember it)."""
        t = candle["time"]
        state = tuple(sorted(candle.items()))
        if self.seen.get(t) == state:
            return False
        self.seen[t] = state
        self.seen.move_to_end(t)
        while len(self.seen) > MEMORY:
            self.seen.popitem(last=False)
        if self.mark is None or t > self.mark:
            self.mark = t
        return True


def _socket_url(base: str) -> tuple[str, str]:
    """``(ws url, origin)`` for the HTTP base URL."""
    parts = urllib.parse.urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/ws/market/", f"{parts.scheme}://{parts.netloc}"


async def stream(
    client: "Client", symbols: list[str], tf: str, *, since: int | None = None,
    studies: list[str] | None = None, reconnect: bool = True, max_backoff: float = 10.0,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> AsyncIterator[Update]:
    """Yield ``Update``s of ``symbols`` at ``tf`` (snapshot history first: from ``since``
    if given, else the server's default page), forever, reconnecting with backoff."""
    import websockets

    url, origin = _socket_url(client.url)
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    streams = {s: _Stream(s, since) for s in symbols}
    backoff = 0.5
    while True:
        try:
            async with websockets.connect(url, origin=origin, additional_headers=headers,
                                          max_size=None, open_timeout=20) as ws:
                for s in streams.values():
                    msg: dict[str, Any] = {"type": "subscribe", "symbol": s.symbol, "tf": tf}
                    if s.mark is not None:
                        msg["since"] = s.mark
                    if studies:
                        msg["studies"] = list(studies)
                    await ws.send(json.dumps(msg))
                async for text in ws:
                    frame = json.loads(text)
                    kind = frame.get("type")
                    if kind == "sync":
                        await ws.send(json.dumps({"type": "ack", "seq": frame["seq"]}))
                    elif kind in ("snapshot", "candle"):
                        backoff = 0.5
                        s = streams.get(frame.get("symbol"))
                        if s is None or frame.get("tf") != tf:
                            continue
                        async for update in _updates(client, s, tf, frame, studies):
                            yield update
                    elif kind == "error":
                        _raise_if_fatal(frame, streams)
                        if frame.get("code") not in TRANSIENT and "symbol" not in frame:
                            break  # "server error; try again shortly": reconnect after a pause
                    elif kind == "status" and on_status is not None:
                        on_status(frame)
        except StreamError:
            raise
        except websockets.exceptions.InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise StreamError(f"the server refused the socket (HTTP {status}): check the token") from None
            if not reconnect:
                raise
            logger.warning("socket handshake failed (HTTP %s); retrying in %.1f s", status, backoff)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
            if not reconnect:
                raise
            logger.warning("socket lost (%s); resuming in %.1f s", exc.__class__.__name__, backoff)
        else:
            if not reconnect:
                return
        await asyncio.sleep(backoff)
        backoff = min(max_backoff, backoff * 2)


def _raise_if_fatal(frame: dict[str, Any], streams: dict[str, _Stream]) -> None:
    code = frame.get("code")
    if code in TRANSIENT:
        return
    if "symbol" in frame or code in {"bad_study", "too_many_subscriptions", "symbol_limit",
                                     "unknown_symbol", "bad_timeframe", "bad_request"}:
        raise StreamError(f"{frame.get('symbol', '')} {frame.get('tf', '')}: {frame.get('message')}".strip())


async def _updates(client: "Client", s: _Stream, tf: str, frame: dict[str, Any],
                   studies: list[str] | None) -> AsyncIterator[Update]:
    if frame["type"] == "candle":
        if s.fresh(frame["candle"]):
            yield Update(s.symbol, tf, frame["candle"], _flat(frame.get("studies")))
        return
    pages = [(frame.get("candles") or [], frame.get("studies"))]
    candles = pages[0][0]
    if s.mark is not None and candles and len(candles) >= PAGE and candles[0]["time"] > s.mark:
        # Too far behind for one snapshot: the server sent its newest page; read the gap first.
        gap = await asyncio.to_thread(lambda: [(c, r) for c, r, _ in client.pages(
            s.symbol, tf, s.mark, candles[0]["time"] - 1, studies=studies)])
        pages = gap + pages
    for candles, rows in pages:
        for i, candle in enumerate(candles):
            if s.fresh(candle):
                yield Update(s.symbol, tf, candle, flatten_studies(rows, i) if rows else None)


def _flat(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A live frame's ``{key: value | {part: value}}`` as the flat columns of ``history``."""
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            for part, v in value.items():
                if part != "time":
                    out[f"{key}.{part}"] = v
        else:
            out[key] = value
    return out

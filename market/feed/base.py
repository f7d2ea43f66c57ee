"""The feed contract: a ``Feed`` runs a source; a ``FeedContext`` is all it may touch.

Django's pluggable backends are the model: subclasses implement ``run``; the runner
(``market.feed.runner``) builds the context, so a feed never sees the engine, the
pipeline's counters, the database or the channel layer directly.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Protocol

from market.core.types import Reject, Tick, TickBatch

#: One decoded message to what it holds: a tick, a rejection, nothing that is a tick
#: (control, depth) as ``None``, or several of them at once (``TickBatch``, e.g. Finnhub).
Parser = Callable[[Any], "Tick | Reject | TickBatch | None"]


class FeedContext(Protocol):
    """What a feed may do: parse and hand over ticks, know and add symbols, say how it is."""

    source: str
    #: Where the input stands (a replay's line): stored with the candles it led to.
    position: Any
    #: The position the last run's stored candles include (None: start from the beginning).
    resume_position: Any
    #: A live feed's last tick the last run journaled (None: unknown); its ticks up to this
    #: one are in the engine already (market.feed.journal).
    resume_tick: Tick | None

    @property
    def status(self) -> str: ...
    def set_status(self, state: str, detail: str = "") -> None: ...
    def parse(self, message: Any) -> Tick | Reject | TickBatch | None: ...
    def reject_message(self, reason: str) -> None: ...
    def reject(self, reason: str) -> None: ...
    def add(self, tick: Tick) -> Reject | None: ...
    async def flush(self) -> int: ...
    def owns(self, ticker: str) -> bool: ...
    def knows(self, ticker: str) -> bool: ...
    def open_buckets(self, ticker: str) -> dict[str, int | None]: ...
    async def track(self, symbols: list[Any], *, restore: bool = True) -> dict[str, Any]: ...
    async def register(self, *, ticker: str, exchange: str, kind: str, name: str = "") -> bool: ...


class Feed(ABC):
    #: Live sources are checked against the wall clock (contract e); replays are not.
    live: ClassVar[bool] = True

    def __init__(self, ctx: FeedContext, **options: Any) -> None:
        self.ctx = ctx
        self.options = options

    @classmethod
    def parser(cls) -> Parser | None:
        """The source's message parser (``None``: the feed makes ``Tick`` objects itself)."""
        return None

    @abstractmethod
    async def run(self, stop: asyncio.Event) -> None:
        """Hand ticks to ``self.ctx`` until the source ends or ``stop`` is set."""

"""The feed contract: subclasses must implement ``run``."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.runner import FeedContext


class Feed(ABC):
    #: Live sources are checked against the wall clock (contract e); replays are not.
    live: bool = True

    def __init__(self, ctx: "FeedContext", **options: Any) -> None:
        self.ctx = ctx
        self.pipeline = ctx.pipeline
        self.options = options

    @abstractmethod
    async def run(self, stop: asyncio.Event) -> None:
        """Hand ticks to ``self.pipeline`` until the source ends or ``stop`` is set."""

"""Market data sources behind one small interface (``market.feeds.base.Feed``).

Feeds are chosen by name, like Django's pluggable backends: the name maps to a dotted
path, so a new source is a new module and one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from market.feeds.base import Feed

FEEDS = {
    "simulated": "market.feeds.simulated.SimulatedFeed",
    "replay": "market.feeds.replay.ReplayFeed",
    "fyers": "market.feeds.fyers.FyersFeed",
    "finnhub": "market.feeds.finnhub.FinnhubFeed",
}


def load_feed(name: str) -> "type[Feed]":
    try:
        module, _, cls = FEEDS[name].rpartition(".")
    except KeyError:
        raise ValueError(f"unknown feed {name!r}; choose from {', '.join(FEEDS)}") from None
    return getattr(import_module(module), cls)

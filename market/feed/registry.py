"""Market data sources behind one small interface (``market.feed.base.Feed``).

Feeds are chosen by name, like Django's pluggable backends: the name maps to a dotted
path, so a new source is a new module and one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from market.feed.base import Feed

FEEDS = {
    "simulated": "market.feed.simulated.SimulatedFeed",
    "replay": "market.feed.replay.ReplayFeed",
    "fyers": "market.vendors.fyers.feed.FyersFeed",
    "finnhub": "market.vendors.finnhub.feed.FinnhubFeed",
    "metronome": "market.feed.metronome.MetronomeFeed",
}


def load_feed(name: str) -> "type[Feed]":
    try:
        module, _, cls = FEEDS[name].rpartition(".")
    except KeyError:
        raise ValueError(f"unknown feed {name!r}; choose from {', '.join(FEEDS)}") from None
    return getattr(import_module(module), cls)

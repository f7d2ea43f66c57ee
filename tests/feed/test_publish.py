"""Publishing a flush on a layer that cannot be pipelined (``broadcast.events_send``'s
fallback): several groups at once, at most ``SENDS_IN_FLIGHT``, each group in order."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer

from market.core.types import Candle, CandleUpdate
from market.live import broadcast
from market.live.broadcast import candles_publish, group_name

T0 = 1_731_999_960


def candle(i: int) -> Candle:
    return Candle(T0 + 60 * i, 100.0 + i, 105.0 + i, 95.0 + i, 101.0 + i, 1000.0 + i, 3)


class SlowLayer:
    """Records each group_send and how many were in flight; each takes a loop turn or two."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = self.most_in_flight = 0

    async def group_send(self, group: str, event: dict[str, Any]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.sent.append((group, event))
        self.in_flight -= 1


def test_groups_go_out_side_by_side_bounded_and_each_in_order():
    layer = SlowLayer()
    tickers = [f"NSE:S{i:03d}-EQ" for i in range(100)]
    updates = [CandleUpdate(t, "1m", candle(i), final=True) for i in range(5) for t in tickers]
    assert not broadcast.pipelined(layer)
    assert asyncio.run(candles_publish(layer, updates)) == 500
    assert 1 < layer.most_in_flight <= broadcast.SENDS_IN_FLIGHT
    assert len(layer.sent) == 500
    for t in tickers:
        times = [e["candle"]["time"] for g, e in layer.sent if g == group_name(t, "1m")]
        assert times == [candle(i).time for i in range(5)], t


def test_only_the_newest_state_of_a_candle_is_sent():
    layer = SlowLayer()
    older = CandleUpdate("DEMO:ALPHA", "1m", candle(0), final=False)
    newer = CandleUpdate("DEMO:ALPHA", "1m", Candle(T0, 100.0, 106.0, 95.0, 104.0, 1500.0, 4), final=True)
    assert asyncio.run(candles_publish(layer, [older, newer])) == 1
    assert [e["candle"]["close"] for _, e in layer.sent] == [104.0]


def test_the_in_memory_layer_delivers_a_flush_to_its_group_in_order():
    async def run() -> list[int]:
        layer = InMemoryChannelLayer(capacity=10_000)
        chan = await layer.new_channel()
        await layer.group_add(group_name("DEMO:ALPHA", "5m"), chan)
        updates = [CandleUpdate(t, tf, candle(i), final=True)
                   for i in range(50) for t in ("DEMO:ALPHA", "DEMO:BETA") for tf in ("1m", "5m")]
        await candles_publish(layer, updates)
        return [(await layer.receive(chan))["candle"]["time"] for _ in range(50)]

    assert asyncio.run(run()) == [candle(i).time for i in range(50)]

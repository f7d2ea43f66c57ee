"""A restarted simulated market keeps counting volume (issue 12, item 1).

The simulator's cumulative day volume must resume from what is stored: restarting it
at zero left it below the engine's day baseline, so every candle after a restart had
volume 0 until the simulator caught up (days later).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import override_settings

from market.conf import market
from market.core.simulator import DAY, RandomWalk, SimSymbol
from market.core.timeframes import BASE
from market.feed import simulated
from market.feed.runner import run_feed
from market.models import Candle, SymbolCheckpoint

T0 = 1_732_060_800.0  # 2024-11-20 00:00 UTC


class RecordingWalk(RandomWalk):
    """The demo market, remembering every tick it makes (across runs: ``made`` is shared)."""

    made: list = []

    def ticks_until(self, t_end, *, t_start=None):
        for tick in super().ticks_until(t_end, t_start=t_start):
            self.made.append(tick)
            yield tick


async def run_for(seconds: float):
    stop = asyncio.Event()
    task = asyncio.create_task(run_feed("simulated", stop))
    await asyncio.sleep(seconds)
    stop.set()
    return await task


def expected_base_volumes(ticks) -> dict[tuple[str, int], float]:
    """The 5 s volumes an uninterrupted run gives (contract g): each tick adds the rise of
    the cumulative day volume, the very first one being the baseline; a new day starts at 0."""
    out: dict[tuple[str, int], float] = defaultdict(float)
    last: dict[str, tuple[int, float]] = {}
    for t in ticks:
        if t.day_volume is None:
            continue
        day = int(t.time // DAY)
        prev = last.get(t.symbol)
        if prev is None:
            rise = 0.0
        elif prev[0] != day:
            rise = t.day_volume
        else:
            rise = max(0.0, t.day_volume - prev[1])
        last[t.symbol] = (day, max(t.day_volume, prev[1]) if prev and prev[0] == day else t.day_volume)
        out[(t.symbol, int(t.time // BASE.seconds) * BASE.seconds)] += rise
    return dict(out)


def stored_base_volumes() -> dict[tuple[str, int], float]:
    return {
        (ticker, t): volume
        for ticker, t, volume in Candle.objects.filter(timeframe=BASE.code).values_list(
            "symbol__ticker", "time", "volume")
    }


@pytest.mark.django_db(transaction=True)
async def test_candles_after_a_restart_have_the_volume_an_uninterrupted_run_gives(monkeypatch):
    monkeypatch.setattr(simulated, "RandomWalk", RecordingWalk)
    RecordingWalk.made = []
    overrides = {"SIM_BACKFILL_HOURS": 0.05, "SIM_RATE": 5.0, "FLUSH_INTERVAL": 0.2}
    with override_settings(MARKET={**settings.MARKET, **overrides}):
        market.cache_clear()
        first = await run_for(2.0)
        restart_at = len(RecordingWalk.made)
        second = await run_for(6.0)
        stored = await database_sync_to_async(stored_base_volumes)()
    # (Two index ticks in the same millisecond at the same price are one: a repeat.)
    assert set(first.engine.rejected) <= {"repeat"} and set(second.engine.rejected) <= {"repeat"}
    made = RecordingWalk.made
    after = [t for t in made[restart_at:] if t.day_volume is not None]
    assert len(after) > 20, "the second run made too few ticks to judge"

    # The simulator's day volume keeps rising across the restart (each trade adds >= 1).
    last: dict[str, tuple[int, float]] = {}
    for t in made[:restart_at]:
        if t.day_volume is not None:
            last[t.symbol] = (int(t.time // DAY), t.day_volume)
    for t in after:
        day, volume = last[t.symbol]
        if int(t.time // DAY) == day:
            assert t.day_volume >= volume + 1, f"{t.symbol}'s day volume went back after the restart"
        last[t.symbol] = (int(t.time // DAY), t.day_volume)

    # Every 5 s candle the second run made has volume, exactly what an uninterrupted run gives.
    expected = expected_base_volumes(made)
    second_buckets = {(t.symbol, int(t.time // 5) * 5) for t in after}
    assert second_buckets
    for key in sorted(second_buckets):
        assert stored[key] > 0, f"{key} has no volume after the restart"
        assert stored[key] == expected[key], key
    for key, volume in expected.items():  # and the first run's too
        assert stored[key] == volume, key


@pytest.mark.django_db(transaction=True)
async def test_without_an_engine_checkpoint_the_day_volume_resumes_from_the_stored_total(monkeypatch):
    """Candles stored without their engine state (e.g. an import): the engine's baseline is
    the day's stored volume, and the simulator continues from that total."""
    monkeypatch.setattr(simulated, "RandomWalk", RecordingWalk)
    RecordingWalk.made = []
    overrides = {"SIM_BACKFILL_HOURS": 0.05, "SIM_RATE": 5.0, "FLUSH_INTERVAL": 0.2}
    with override_settings(MARKET={**settings.MARKET, **overrides}):
        market.cache_clear()
        await run_for(2.0)
        await database_sync_to_async(lambda: SymbolCheckpoint.objects.all().delete())()
        restart_at = len(RecordingWalk.made)
        await run_for(6.0)
        stored = await database_sync_to_async(stored_base_volumes)()
    ticks: dict[tuple[str, int], int] = defaultdict(int)
    for t in RecordingWalk.made[restart_at:]:
        if t.day_volume is not None:
            ticks[(t.symbol, int(t.time // 5) * 5)] += 1
    assert len(ticks) > 3
    for key, n in ticks.items():
        assert stored[key] >= n, f"{key}: {n} trades, each of at least 1, but volume {stored[key]}"


def test_start_from_resumes_the_day_volume_of_the_same_day():
    walk = RandomWalk([SimSymbol("X:A", "A", 100.0)], seed=1)
    walk.start_from("X:A", 100.0, day_volume=(int(T0), 50_000.0))
    ticks = list(walk.ticks_until(T0 + 30, t_start=T0 + 10))
    assert ticks and ticks[0].day_volume > 50_000.0
    volumes = [t.day_volume for t in ticks]
    assert volumes == sorted(volumes)


def test_start_from_ignores_the_day_volume_of_an_earlier_day():
    walk = RandomWalk([SimSymbol("X:A", "A", 100.0)], seed=1)
    walk.start_from("X:A", 100.0, day_volume=(int(T0 - DAY), 50_000.0))
    ticks = list(walk.ticks_until(T0 + 30, t_start=T0 + 10))
    assert ticks and ticks[0].day_volume < 50_000.0  # a new day starts from 0


@pytest.mark.django_db(transaction=True)
async def test_sim_symbols_adds_that_many_symbols_and_every_one_streams():
    """MARKET SIM_SYMBOLS: the demo four and N more, each registered on the DEMO exchange
    and getting candles (the universe bench/soak.py runs)."""
    from market.models import Symbol

    overrides = {"SIM_BACKFILL_HOURS": 0.01, "SIM_RATE": 5.0, "FLUSH_INTERVAL": 0.2, "SIM_SYMBOLS": 6}
    with override_settings(MARKET={**settings.MARKET, **overrides}):
        market.cache_clear()
        await run_for(2.0)
    market.cache_clear()
    made = await database_sync_to_async(
        lambda: set(Symbol.objects.filter(exchange="DEMO", source="simulated").values_list("ticker", flat=True)))()
    assert made == {"DEMO:ALPHA", "DEMO:BETA", "DEMO:GAMMA", "DEMO:INDEX"} | {f"DEMO:S{i:04d}" for i in range(6)}
    with_candles = await database_sync_to_async(
        lambda: set(Candle.objects.filter(timeframe=BASE.code).values_list("symbol__ticker", flat=True)))()
    assert with_candles == made


@pytest.mark.parametrize("bad", [-1, 10_001, 2.5, "many"])
def test_sim_symbols_out_of_range_is_a_clear_configuration_error(bad):
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(MARKET={**settings.MARKET, "SIM_SYMBOLS": bad}):
        market.cache_clear()
        try:
            with pytest.raises(ImproperlyConfigured, match="SIM_SYMBOLS must be a whole number from 0 to 10000"):
                market()
        finally:
            market.cache_clear()

from market.core.conflate import Conflator
from market.core.types import Candle, CandleUpdate


def up(t: int, close: float, final: bool = False, tf: str = "5s", symbol: str = "X") -> CandleUpdate:
    return CandleUpdate(symbol, tf, Candle(t, 1.0, 2.0, 0.5, close, 1.0, 1), final)


def closes(updates):
    return [(u.candle.time, u.candle.close, u.final) for u in updates]


def test_at_most_n_updates_per_second_per_stream_latest_wins():
    c = Conflator(4)  # one every 0.25 s
    assert closes(c.offer([up(0, 1.0)], now=0.0)) == [(0, 1.0, False)]
    assert c.offer([up(0, 2.0)], now=0.1) == []
    assert c.offer([up(0, 3.0)], now=0.2) == []  # replaces 2.0
    assert closes(c.offer([], now=0.25)) == [(0, 3.0, False)]
    assert c.conflated == 1


def test_final_state_is_never_held_and_supersedes_a_held_update():
    c = Conflator(1)
    c.offer([up(0, 1.0)], now=0.0)
    assert c.offer([up(0, 2.0)], now=0.1) == []
    assert closes(c.offer([up(0, 2.5, final=True)], now=0.2)) == [(0, 2.5, True)]
    assert c.held == 0


def test_a_held_update_of_an_older_candle_is_sent_before_a_newer_final():
    c = Conflator(1)
    c.offer([up(0, 1.0)], now=0.0)
    c.offer([up(5, 7.0)], now=0.1)  # held
    assert closes(c.offer([up(10, 8.0, final=True)], now=0.2)) == [(5, 7.0, False), (10, 8.0, True)]


def test_streams_are_independent():
    c = Conflator(1)
    got = c.offer([up(0, 1.0), up(0, 1.0, tf="1m"), up(0, 1.0, symbol="Y")], now=0.0)
    assert len(got) == 3

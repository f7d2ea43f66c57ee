"""The candle write path (issue 17): on PostgreSQL binary COPY into a temporary table and one
``INSERT … SELECT … ON CONFLICT``, elsewhere (and below ``services.COPY_MIN_ROWS``) the
pipelined ``executemany``. Both must store exactly the same rows, in the writer's own
transaction (fence, checkpoints), so the crash-exact and fencing guarantees hold.

The COPY tests need PostgreSQL (the services run); the embedded run checks the SQLite path
against the same expected rows and the fence."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.db import IntegrityError, connection, transaction

from market import selectors, services
from market.core.types import Candle as CandleValue
from market.core.types import CandleUpdate, WriterFenced
from market.models import Candle, SymbolCheckpoint

DAY = 86_400
T0 = int(datetime(2026, 11, 20, 23, 0, tzinfo=timezone.utc).timestamp())  # an hour before a UTC midnight
#: Prices that a decimal rendering or a float4 would change; volumes past 2**31 and at 2**53.
AWKWARD = [0.1 + 0.2, 1e-9, 123456.78901234567, 5e-324, 1.7976931348623157e308, 2.0 ** 53 - 1]


@pytest.fixture(autouse=True)
def _fresh_partition_state():
    services.candle_partition_forget()
    yield
    services.candle_partition_forget()


@pytest.fixture
def pg():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (set DATABASE_URL): SQLite has no COPY")


@pytest.fixture
def copy_calls(monkeypatch):
    """How many writes went by COPY."""
    calls = []
    real = services._candle_copy

    def spy(cursor, rows):
        calls.append(len(rows))
        return real(cursor, rows)

    monkeypatch.setattr(services, "_candle_copy", spy)
    return calls


def symbols(n: int = 3) -> dict[str, int]:
    return {t: services.symbol_register(ticker=t, exchange="NSE")[0].pk for t in (f"NSE:W{i}-EQ" for i in range(n))}


def batches(ids: dict[str, int]) -> list[list[CandleUpdate]]:
    """Three writes: new rows over three UTC days (several 5 s partitions, a 1 m month, a
    1 d table); then revisions of some of them, new rows, and repeats within the batch (the
    last wins); then the second batch again, unchanged."""
    first, second = [], []
    for s, ticker in enumerate(ids):
        for k in range(60):
            t = T0 + k * 2_400  # 60 steps of 40 min: 23:00 on day one to past midnight of day three
            p = AWKWARD[(s + k) % len(AWKWARD)]
            v = float(2 ** 31 + k) if k % 2 else 2 ** 53  # int volumes as the engine makes, and floats
            first.append(CandleUpdate(ticker, "5s", CandleValue(t, p, p * 2, p / 2, p, v, k + 1), k % 3 == 0))
            first.append(CandleUpdate(ticker, "1m", CandleValue(t - t % 60, p, p, p, p, v, 1), True))
        first.append(CandleUpdate(ticker, "1d", CandleValue(T0 - T0 % DAY, 1.0, 2.0, 0.5, 1.5, 10, 2), True))
        for k in range(0, 60, 4):  # revisions of stored rows, twice each: the second wins
            t = T0 + k * 2_400
            second.append(CandleUpdate(ticker, "5s", CandleValue(t, 9.0, 9.5, 8.5, 9.25, 1, 1), False))
            second.append(CandleUpdate(ticker, "5s", CandleValue(t, 0.1 * 3, 0.7, 0.2, 0.3, 7 + k, 3), True))
        for k in range(5):  # and new ones, on a fourth day
            t = T0 + 3 * DAY + 5 * k
            second.append(CandleUpdate(ticker, "5s", CandleValue(t, 1.1, 1.2, 1.0, 1.15, 3, 1), True))
    return [first, second, list(second)]


def expected(all_batches: list[list[CandleUpdate]], ids: dict[str, int]) -> list[tuple]:
    latest: dict[tuple, tuple] = {}
    for batch in all_batches:
        for u in batch:
            c = u.candle
            latest[(ids[u.symbol], u.timeframe, c.time)] = (
                ids[u.symbol], u.timeframe, c.time, c.open, c.high, c.low, c.close, float(c.volume), c.ticks)
    return sorted(latest.values())


def stored() -> list[tuple]:
    return sorted(Candle.objects.values_list("symbol_id", "timeframe", "time", "open", "high", "low", "close",
                                             "volume", "ticks"))


def bits(rows: list[tuple]) -> list[tuple]:
    """Floats by their bits: 0.30000000000000004 and 0.3 differ here, as they must."""
    return [tuple(x.hex() if isinstance(x, float) else x for x in row) for row in rows]


def write_all(all_batches, ids) -> list[tuple]:
    for batch in all_batches:
        services.candle_upsert_many(updates=batch, symbol_ids=ids)
    return stored()


def test_copy_stores_exactly_what_the_executemany_upsert_stores(transactional_db, pg, copy_calls, monkeypatch):
    ids = symbols()
    todo = batches(ids)
    by_copy = write_all(todo, ids)
    assert copy_calls, "the writes did not go by COPY"
    days = {name for name in (r.partition.name for r in selectors.candle_partition_list()) if "_5s_" in name}
    assert {"market_candle_5s_20261120", "market_candle_5s_20261122", "market_candle_5s_20261123"} <= days

    Candle.objects.all().delete()
    copy_calls.clear()
    monkeypatch.setattr(services, "COPY_MIN_ROWS", 10 ** 9)  # the executemany upsert, as before COPY
    by_executemany = write_all(todo, ids)
    assert not copy_calls

    assert bits(by_copy) == bits(by_executemany) == bits(expected(todo, ids))
    assert all(type(r[2]) is int and type(r[8]) is int and r[7] == int(r[7]) for r in by_copy)  # NULL-free, whole
    assert not any(v is None for r in by_copy for v in r)


def test_sqlite_keeps_the_executemany_upsert(transactional_db, copy_calls):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    ids = symbols()
    todo = batches(ids)
    assert bits(write_all(todo, ids)) == bits(expected(todo, ids))
    assert not copy_calls


def _versions() -> dict[int, str]:
    """Each row's id and xmin: a rewritten row is a new row version, with a new xmin."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, xmin::text FROM market_candle")
        return dict(cursor.fetchall())


def test_an_unchanged_row_is_not_rewritten(transactional_db, pg):
    ids = symbols(1)
    todo = batches(ids)
    write_all(todo[:2], ids)
    before = _versions()
    services.candle_upsert_many(updates=todo[2], symbol_ids=ids)  # the same values again
    assert _versions() == before
    changed = [CandleUpdate(u.symbol, u.timeframe, CandleValue(u.candle.time, u.candle.open, u.candle.high,
                                                               u.candle.low, u.candle.close + 1, u.candle.volume,
                                                               u.candle.ticks), u.final) for u in todo[0][:3]]
    services.candle_upsert_many(updates=changed, symbol_ids=ids)  # three distinct rows, changed
    after = _versions()
    assert after.keys() == before.keys()  # nothing inserted anew
    assert sum(after[k] != before[k] for k in before) == 3


def test_two_copy_writes_in_one_transaction(db, pg, copy_calls):
    """The staging table is emptied by each move: the second write does not see the first's rows."""
    ids = symbols(1)
    (ticker,) = ids
    one = [CandleUpdate(ticker, "5s", CandleValue(T0 + 5 * k, 1.0, 1.0, 1.0, 1.0, 1, 1), True) for k in range(50)]
    two = [CandleUpdate(ticker, "5s", CandleValue(T0 + 5 * k, 2.0, 2.0, 2.0, 2.0, 2, 2), True) for k in range(25, 75)]
    with transaction.atomic():
        assert services.candle_upsert_many(updates=one, symbol_ids=ids) == 50
        assert services.candle_upsert_many(updates=two, symbol_ids=ids) == 50
    assert len(copy_calls) == 2
    rows = stored()
    assert len(rows) == 75
    assert [r[3] for r in rows] == [1.0] * 25 + [2.0] * 50


def test_a_rolled_back_copy_leaves_nothing_and_the_next_write_works(transactional_db, pg, copy_calls):
    """The staging table made in a transaction that rolls back is gone with it: the next
    write makes it again (no cached 'it exists')."""
    ids = symbols(1)
    (ticker,) = ids
    rows = [CandleUpdate(ticker, "5s", CandleValue(T0 + 5 * k, 1.0, 1.0, 1.0, 1.0, 1, 1), True) for k in range(10)]
    connection.close()  # a new session: no staging table yet
    with pytest.raises(RuntimeError), transaction.atomic():
        services.candle_upsert_many(updates=rows, symbol_ids=ids)
        raise RuntimeError("rolled back")
    assert stored() == []
    assert services.candle_upsert_many(updates=rows, symbol_ids=ids) == 10
    assert len(stored()) == 10
    with connection.cursor() as cursor:  # and nothing is left staged after the commit
        cursor.execute(f"SELECT count(*) FROM {services._STAGE}")
        assert cursor.fetchone()[0] == 0
    assert len(copy_calls) == 2


def test_whole_number_columns_take_integral_floats_only(transactional_db, pg):
    ids = symbols(1)
    (ticker,) = ids
    ok = CandleUpdate(ticker, "5s", CandleValue(float(T0), 1.0, 1.0, 1.0, 1.0, 3, 2.0), True)
    assert services.candle_upsert_many(updates=[ok], symbol_ids=ids) == 1
    assert stored() == [(ids[ticker], "5s", T0, 1.0, 1.0, 1.0, 1.0, 3.0, 2)]
    bad = CandleUpdate(ticker, "5s", CandleValue(T0 + 2.5, 1.0, 1.0, 1.0, 1.0, 3, 2), True)
    with pytest.raises(ValueError, match="whole numbers"):
        services.candle_upsert_many(updates=[bad], symbol_ids=ids)
    assert len(stored()) == 1


def checkpointed(ids, updates, epoch, position, states=None):
    return services.candle_store_checkpointed(updates=updates, symbol_ids=ids, writer="w17", epoch=epoch,
                                              states=states or {}, position=position)


def test_a_stale_epoch_is_refused_and_writes_nothing(transactional_db, copy_calls):
    ids = symbols(2)
    todo = batches(ids)[0]
    stale = services.writer_claim(name="w17")
    current = services.writer_claim(name="w17")  # another runfeed took over
    with pytest.raises(WriterFenced):
        checkpointed(ids, todo, stale, position=["f", 10], states={t: {"s": 1} for t in ids})
    assert stored() == []
    assert not copy_calls  # refused before any candle is sent
    assert selectors.writer_position(name="w17") is None
    assert not SymbolCheckpoint.objects.exists()
    assert checkpointed(ids, todo, current, position=["f", 10], states={t: {"s": 1} for t in ids}) == len(
        expected([todo], ids))
    assert bits(stored()) == bits(expected([todo], ids))
    assert selectors.writer_position(name="w17") == ["f", 10]
    assert SymbolCheckpoint.objects.count() == 2
    assert bool(copy_calls) == (connection.vendor == "postgresql")


def test_candles_roll_back_with_a_checkpoint_that_fails(transactional_db):
    """Candles and checkpoint commit together: a checkpoint that cannot be stored (a state
    for a symbol that does not exist) takes the COPYed candles with it."""
    ids = symbols(1)
    todo = batches(ids)[0]
    epoch = services.writer_claim(name="w17")
    checkpointed(ids, todo[:10], epoch, position=["f", 1])
    before = stored()
    with pytest.raises(IntegrityError):
        checkpointed(ids | {"NSE:GHOST-EQ": 987_654_321}, todo, epoch, position=["f", 2],
                     states={"NSE:GHOST-EQ": {"s": 1}})
    assert stored() == before
    assert selectors.writer_position(name="w17") == ["f", 1]

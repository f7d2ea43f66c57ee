"""The partitioned candle table on PostgreSQL (issue 14; docs/durability.md "Partitions").

These run in the services run (DATABASE_URL: PostgreSQL), which CI always has; the embedded
run (SQLite, a plain table) skips them and checks the SQLite side instead."""

from __future__ import annotations

import io
import threading
from datetime import datetime, timezone

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.migrations.loader import MigrationLoader

from market import selectors, services
from market.core.timeframes import Timeframe
from market.core.types import Candle as CandleValue
from market.core.types import CandleUpdate
from market.models import Candle

DAY = 86400


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


@pytest.fixture(autouse=True)
def _fresh_partition_state():
    services.candle_partition_forget()
    yield
    services.candle_partition_forget()


@pytest.fixture
def pg():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (set DATABASE_URL): SQLite keeps a plain candle table")


def names() -> set[str]:
    rows = selectors.candle_partition_list()
    assert rows is not None
    return {r.partition.name for r in rows}


def write(symbol, pairs, price: float = 1.0) -> int:
    updates = [CandleUpdate(symbol.ticker, tf, CandleValue(t, price, price, price, price, 1.0, 1), True)
               for tf, t in pairs]
    return services.candle_upsert_many(updates=updates, symbol_ids={symbol.ticker: symbol.pk})


def stored() -> list[tuple]:
    return sorted(Candle.objects.values_list("id", "symbol_id", "timeframe", "time", "open", "high", "low",
                                             "close", "volume", "ticks"))


def test_sqlite_keeps_a_plain_table(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    assert selectors.candle_partition_list() is None
    assert services.candle_partition_ensure(pairs=[("5s", ts(2020, 1, 1))]) == []
    assert services.candle_partition_drop(timeframe="5s", before=ts(2030, 1, 1)) is None


# --- the migration --------------------------------------------------------------------------

def _migration() -> tuple[str, str]:
    """This migration's name and the one before it (the numbering moves at merges)."""
    loader = MigrationLoader(connection)
    (name,) = [n for app, n in loader.disk_migrations if app == "market" and n.endswith("_candle_partitions")]
    (parent,) = [n for app, n in loader.disk_migrations[("market", name)].dependencies if app == "market"]
    return name, parent


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_every_row_both_ways(pg, make_symbol):
    name, parent = _migration()
    sbin, tcs = make_symbol("NSE:SBIN-EQ"), make_symbol("NSE:TCS-EQ")
    call_command("migrate", "market", parent, verbosity=0)
    services.candle_partition_forget()
    assert selectors.candle_partition_list() is None  # a plain table again
    times = {"5s": [ts(2025, 12, 31, 23, 59, 55), ts(2026, 1, 1), ts(2026, 3, 4, 9, 15)],
             "1m": [ts(2024, 2, 29, 10), ts(2026, 3, 4, 9, 15)], "1d": [ts(2001, 1, 1), ts(2026, 3, 4)]}
    for s in (sbin, tcs):
        Candle.objects.bulk_create([Candle(symbol=s, timeframe=tf, time=t, open=1.5, high=2, low=1, close=1.25,
                                           volume=7, ticks=3) for tf, ts_ in times.items() for t in ts_])
    before = stored()
    call_command("migrate", "market", name, verbosity=0)
    services.candle_partition_forget()
    assert stored() == before
    made = names()
    assert {"market_candle_5s", "market_candle_5s_20251231", "market_candle_5s_20260101", "market_candle_5s_20260304",
            "market_candle_1m", "market_candle_1m_202402", "market_candle_1m_202603", "market_candle_1d"} <= made
    assert not any(n.startswith("market_candle_1d_") for n in made)  # kept forever: one partition
    top = max(r[0] for r in before)
    write(sbin, [("5s", ts(2026, 3, 4, 9, 16))])
    assert Candle.objects.get(symbol=sbin, timeframe="5s", time=ts(2026, 3, 4, 9, 16)).id > top  # sequence kept
    after = stored()
    call_command("migrate", "market", parent, verbosity=0)
    services.candle_partition_forget()
    assert selectors.candle_partition_list() is None and stored() == after
    call_command("migrate", "market", verbosity=0)
    services.candle_partition_forget()
    assert stored() == after and selectors.candle_partition_list() is not None


# --- writes -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_write_into_a_range_without_partition_makes_it(pg, make_symbol):
    s = make_symbol()
    assert "market_candle_5s_20190305" not in names()
    pairs = [("5s", ts(2019, 3, 5, 9, 15)), ("5s", ts(2019, 3, 5, 9, 15, 5)), ("1m", ts(2018, 7, 9, 10)),
             ("1d", ts(2019, 3, 5))]
    assert write(s, pairs) == 4
    got = names()
    assert {"market_candle_5s_20190305", "market_candle_5s_20190306", "market_candle_5s_20190307",
            "market_candle_1m_201807", "market_candle_1m_201808"} <= got
    assert selectors.candle_list(symbol=s, tf=Timeframe.parse("5s"), end=ts(2019, 3, 6), limit=10)[-1].time == \
        ts(2019, 3, 5, 9, 15, 5)
    write(s, pairs, price=2.0)  # the same rows again: upserted, nothing new to make
    assert Candle.objects.filter(symbol=s).count() == 4 and set(Candle.objects.values_list("close", flat=True)) == {2.0}
    assert names() == got


@pytest.mark.django_db
def test_import_and_unknown_timeframes_make_their_partitions(pg, make_symbol):
    make_symbol("NSE:SBIN-EQ")
    written, _ = services.candle_import_batch(rows=[("NSE:SBIN-EQ", "30s", ts(2017, 1, 2), 1, 1, 1, 1, 1, 1),
                                                    ("NSE:SBIN-EQ", "5s", ts(2017, 1, 2), 1, 1, 1, 1, 1, 1)])
    assert written == 2
    got = names()
    assert "market_candle_30s" in got and "market_candle_5s_20170102" in got
    assert not any(n.startswith("market_candle_30s_") for n in got)  # no retention: one partition


@pytest.mark.django_db(transaction=True)
def test_two_writers_making_the_same_partition_both_succeed(pg, make_symbol):
    a, b = make_symbol("NSE:SBIN-EQ"), make_symbol("NSE:TCS-EQ")
    t = ts(2016, 6, 1, 10)
    made_by_a = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                write(a, [("5s", t)])
                made_by_a.set()
                threading.Event().wait(1.0)  # B runs into the same missing partition meanwhile
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            made_by_a.set()
        finally:
            connections.close_all()

    def second() -> None:
        try:
            made_by_a.wait(10)
            write(b, [("5s", t + 5)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert errors == []
    assert sorted(Candle.objects.values_list("symbol__ticker", "time")) == [("NSE:SBIN-EQ", t), ("NSE:TCS-EQ", t + 5)]
    assert "market_candle_5s_20160601" in names()


# --- retention --------------------------------------------------------------------------------

NOW = ts(2026, 6, 15, 12)  # 5 s keeps 30 days (cutoff 2026-05-16 12:00), 1 m 730 (2024-06-15 12:00)


def _retention_rows(s) -> list[tuple[str, int]]:
    pairs = [("5s", ts(2026, 5, d, h)) for d in (10, 14, 15, 16, 17, 31) for h in (3, 20)]
    pairs += [("5s", ts(2026, 6, 15, 11))]
    pairs += [("1m", ts(y, m, 20)) for y, m in ((2024, 4), (2024, 5), (2024, 6), (2024, 7), (2026, 6))]
    pairs += [(tf, ts(2001, 1, 1)) for tf in ("1h", "1d")]
    write(s, pairs)
    return pairs


@pytest.mark.django_db(transaction=True)
def test_prune_drops_exactly_the_expired_partitions(pg, make_symbol):
    s = make_symbol()
    pairs = _retention_rows(s)
    before = set(Candle.objects.values_list("timeframe", "time"))
    dropped_5s = {f"market_candle_5s_202605{d}" for d in (10, 14, 15)}
    dropped_1m = {"market_candle_1m_202404", "market_candle_1m_202405"}
    out = io.StringIO()
    call_command("prune_candles", "--dry-run", "--now", str(NOW), stdout=out)
    for n in dropped_5s:
        assert f"5s: would drop partition {n} (2 candles)" in out.getvalue()
    for n in dropped_1m:
        assert f"1m: would drop partition {n} (1 candles)" in out.getvalue()
    nonempty = [line for line in out.getvalue().splitlines() if "would drop" in line and "(0 candles)" not in line]
    assert len(nonempty) == 5  # (empty partitions other tests left behind go too)
    assert set(Candle.objects.values_list("timeframe", "time")) == before and dropped_5s <= names()

    out = io.StringIO()
    call_command("prune_candles", "--now", str(NOW), stdout=out)
    assert "5s: deleted 6 candles" in out.getvalue() and "1m: deleted 2 candles" in out.getvalue()
    left = names()
    assert not (dropped_5s | dropped_1m) & left
    assert {"market_candle_5s_20260516", "market_candle_1m_202406", "market_candle_1h", "market_candle_1d"} <= left
    gone = {(tf, t) for tf, t in pairs
            if (tf == "5s" and t < ts(2026, 5, 16)) or (tf == "1m" and t < ts(2024, 6, 1))}
    assert set(Candle.objects.values_list("timeframe", "time")) == before - gone
    # the cutoff's own partition keeps its older rows (2026-05-16 03:00 is past 30 days)
    assert ("5s", ts(2026, 5, 16, 3)) in set(Candle.objects.values_list("timeframe", "time"))
    out = io.StringIO()
    call_command("prune_candles", "--now", str(NOW), stdout=out)  # again: nothing more
    assert "deleted 0 candles in all" in out.getvalue()
    write(s, [("5s", ts(2026, 5, 10, 3))])  # a late write into a dropped day makes it again
    assert "market_candle_5s_20260510" in names()


@pytest.mark.django_db(transaction=True)
def test_prune_finishes_an_interrupted_concurrent_detach(pg, make_symbol):
    s = make_symbol()
    write(s, [("5s", ts(2026, 6, 10, 9))])
    with connection.cursor() as cursor:  # what an interrupted DETACH … CONCURRENTLY leaves behind
        cursor.execute("UPDATE pg_inherits SET inhdetachpending = true WHERE inhrelid = %s::regclass",
                       ["market_candle_5s_20260610"])
    assert [r.pending for r in selectors.candle_partition_list() if r.partition.name == "market_candle_5s_20260610"] \
        == [True]
    dropped = services.candle_partition_drop(timeframe="5s", before=ts(2026, 6, 1))
    assert dropped[0] == ("market_candle_5s_20260610", 1)  # finished first: it blocks any other detach
    assert all(n == 0 for _, n in dropped[1:])  # (only empty ones other tests left behind)
    assert "market_candle_5s_20260610" not in names()


def _physical(partition: str) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT symbol_id, time FROM "{partition}" ORDER BY ctid')
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_prune_rewrites_each_ended_partition_in_key_order_once(pg, make_symbol):
    """Candles arrive time-major; an ended day is rewritten symbol by symbol (CLUSTER), once,
    its rows unchanged; the day still being written is left alone."""
    symbols = [make_symbol(f"NSE:S{i}-EQ") for i in range(3)]
    day, today = ts(2026, 6, 12, 4), ts(2026, 6, 15, 4)
    for t in range(0, 600, 5):  # every symbol's bar of a bucket together, as a live feed writes
        for s in symbols:
            write(s, [("5s", day + t), ("5s", today + t)], price=1.0 + t)
    ended, current = "market_candle_5s_20260612", "market_candle_5s_20260615"
    assert _physical(ended) != sorted(_physical(ended))  # time-major as written
    before = stored()
    out = io.StringIO()
    call_command("prune_candles", "--dry-run", "--now", str(NOW), stdout=out)
    assert f"5s: would compact partition {ended} (360 candles)" in out.getvalue()
    assert _physical(ended) != sorted(_physical(ended))  # a dry run rewrites nothing

    out = io.StringIO()
    call_command("prune_candles", "--now", str(NOW), stdout=out)
    assert f"compacted partition {ended} (360 candles)" in out.getvalue()
    assert current not in out.getvalue()
    assert _physical(ended) == sorted(_physical(ended))  # symbol by symbol, each in time order
    assert _physical(current) != sorted(_physical(current))
    assert stored() == before
    out = io.StringIO()
    call_command("prune_candles", "--now", str(NOW), stdout=out)  # again: already done
    assert ended not in out.getvalue()
    call_command("prune_candles", "--no-compact", "--now", str(NOW + 3 * DAY), stdout=out)
    assert current not in out.getvalue()


# --- reads --------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_reads_cross_partitions_unchanged(pg, make_symbol, client):
    s = make_symbol()
    start = ts(2026, 4, 29, 23)  # 5 s over three days, 1 m over two months
    five = [("5s", start + 5 * i) for i in range(0, 2 * DAY // 5, 97)]
    minute = [("1m", start + 60 * i) for i in range(0, 3 * DAY // 60, 7)]
    write(s, five + minute)
    tf5 = Timeframe.parse("5s")
    assert [c.time for c in selectors.candle_list(symbol=s, tf=tf5, limit=50)] == [t for _, t in five[-50:]]
    assert [c.time for c in selectors.candle_list(symbol=s, tf=tf5, start=ts(2026, 4, 30, 23, 50), limit=40)] == \
        [t for _, t in five if t >= ts(2026, 4, 30, 23, 50)][:40]
    body = client.get("/api/candles", {"symbol": s.ticker, "tf": "1m", "limit": 100}).json()
    assert [c["time"] for c in body["candles"]] == [t for _, t in minute[-100:]]
    body = client.get("/api/candles", {"symbol": s.ticker, "tf": "1m", "to": ts(2026, 5, 1), "limit": 10}).json()
    assert [c["time"] for c in body["candles"]] == [t for _, t in minute if t <= ts(2026, 5, 1)][-10:]
    assert selectors.candle_newest(symbol=s, tf=tf5).time == five[-1][1]
    exported = list(selectors.candle_export_iter(chunk=7))  # keyset by id across partitions
    assert len(exported) == len(five) + len(minute) == selectors.candle_export_count()


@pytest.mark.django_db(transaction=True)
def test_a_partition_dropped_under_the_writer_is_made_again_on_the_retry(pg, make_symbol):
    s = make_symbol()
    write(s, [("5s", ts(2015, 3, 2, 10))])  # committed: this process now knows the day exists
    with connection.cursor() as cursor:  # another process drops it
        cursor.execute('DROP TABLE "market_candle_5s_20150302"')
    with pytest.raises(Exception, match="no partition of relation"):
        write(s, [("5s", ts(2015, 3, 2, 11))])
    write(s, [("5s", ts(2015, 3, 2, 11))])  # the retry
    assert list(Candle.objects.values_list("time", flat=True)) == [ts(2015, 3, 2, 11)]


@pytest.mark.django_db
def test_a_timeframe_made_whole_is_pruned_by_rows_when_it_gets_a_retention(pg, make_symbol, settings):
    s = make_symbol()
    write(s, [("1h", ts(2026, 1, 1)), ("1h", ts(2026, 6, 1))])
    assert not any(n.startswith("market_candle_1h_") for n in names())
    settings.MARKET = {"RETENTION_DAYS": {"5s": 30, "1m": 730, "1h": 100}}
    out = io.StringIO()
    call_command("prune_candles", "--tf", "1h", "--now", str(ts(2026, 6, 15)), stdout=out)
    assert "1h: deleted 1 candles" in out.getvalue() and "drop" not in out.getvalue()
    assert list(Candle.objects.filter(timeframe="1h").values_list("time", flat=True)) == [ts(2026, 6, 1)]


@pytest.mark.django_db
def test_the_orm_still_works_on_the_partitioned_table(pg, make_symbol):
    s, other = make_symbol(), make_symbol("NSE:TCS-EQ")
    write(s, [("5s", ts(2026, 2, 3, 9)), ("1m", ts(2026, 2, 3, 9)), ("1d", ts(2026, 2, 3))])
    write(other, [("5s", ts(2026, 2, 3, 9))])
    c = Candle.objects.get(symbol=s, timeframe="1m")
    assert Candle.objects.get(pk=c.pk) == c  # ``id`` is still the pk in Python
    c.close = 9.5
    c.save()  # UPDATE … WHERE id = …
    assert Candle.objects.get(pk=c.pk).close == 9.5
    Candle.objects.get(symbol=s, timeframe="5s").delete()
    assert sorted(Candle.objects.filter(symbol=s).values_list("timeframe", flat=True)) == ["1d", "1m"]
    s.delete()  # the symbol's candles go with it (CASCADE), the other symbol's stay
    assert list(Candle.objects.values_list("symbol__ticker", "timeframe")) == [("NSE:TCS-EQ", "5s")]

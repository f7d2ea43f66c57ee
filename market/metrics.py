"""Prometheus metrics. Web processes count sockets and deliveries; runfeed exposes its
pipeline counters (read at scrape time, so the tick path pays nothing) on --metrics-port."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from market.feed.pipeline import Pipeline

WS_CLIENTS = Gauge("tickchart_ws_clients", "Connected WebSocket clients in this process")
WS_SUBSCRIPTIONS = Gauge("tickchart_ws_subscriptions", "Active (symbol, timeframe) subscriptions in this process")


class LoopCounter(Collector):
    """A counter bumped only on the event loop's thread, tens of thousands of times a second
    (a candle delivery): a plain int, read at scrape time. prometheus_client's ``Counter``
    takes a lock on every ``inc``."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation = name, documentation
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation)
        family.add_metric([], self.value)
        yield family


WS_DELIVERIES = LoopCounter("tickchart_ws_deliveries", "Candle frames sent to browsers by this process")
REGISTRY.register(WS_DELIVERIES)
WS_ERRORS = Counter("tickchart_ws_client_errors_total", "Error replies to bad client messages")


class PipelineCollector(Collector):
    """The feed's counters, read from the running pipeline when Prometheus scrapes."""

    def __init__(self, pipeline: "Pipeline") -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        p = self.pipeline
        ticks = CounterMetricFamily("tickchart_feed_ticks", "Messages by outcome", labels=["source", "outcome"])
        ticks.add_metric([p.source, "accepted"], p.engine.accepted)
        for reason, n in p.rejected().items():
            ticks.add_metric([p.source, reason], n)
        ticks.add_metric([p.source, "not_tick"], p.not_ticks)
        yield ticks
        yield _counter("tickchart_candles_written", "Candle rows upserted", p.source, p.written)
        yield _counter("tickchart_candles_published", "Candle messages published", p.source, p.published)
        yield _counter("tickchart_store_failures", "Failed candle writes", p.source, p.store_failures)
        yield _counter("tickchart_publish_failures", "Failed publishes", p.source, p.publish_failures)
        yield _gauge("tickchart_pending_candles", "Candles waiting to be written", p.source, p.pending)
        yield _gauge("tickchart_write_lag_seconds", "Duration of the last candle write", p.source, p.last_write_seconds)
        yield _gauge("tickchart_pending_candles_peak", "Most candles kept in memory while writes failed", p.source, p.max_pending)
        yield _gauge("tickchart_write_buffer_limit", "Candles kept in memory while writes fail", p.source,
                     p.buffer_limit)
        yield _gauge("tickchart_spilled", "1 while waiting candles are left to the tick journal", p.source,
                     int(p.spilled))
        yield _counter("tickchart_spills", "Times waiting candles were dropped for the journal", p.source, p.spills)
        if p.journal is not None:
            j = p.journal.stats()
            yield _gauge("tickchart_journal_bytes", "Bytes in the tick journal", p.source, j["bytes"])
            yield _gauge("tickchart_journal_full", "1 while the tick journal's size cap is reached", p.source,
                         int(j["full"]))
            yield _gauge("tickchart_journal_failing", "1 while journal writes fail", p.source, int(bool(j["failing"])))
            yield _counter("tickchart_journal_unjournaled", "Accepted ticks the journal could not keep", p.source,
                           j["unjournaled"])
        lag = time.time() - p.last_tick_time if (p.live and p.last_tick_time) else 0.0
        yield _gauge("tickchart_tick_lag_seconds", "Wall clock minus the last tick's exchange time", p.source, lag)


class BudgetCollector(Collector):
    """The Fyers app's shared budgets (market.budget), read from the store at scrape time:
    every process of the app counts there, so any process's /metrics shows the same day."""

    def describe(self) -> Iterator[GaugeMetricFamily]:  # registering must not reach the store
        yield from self._families()[:3]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        labels = ["source", "app"]
        return [
            GaugeMetricFamily("tickchart_rest_requests_today",
                              "REST requests of the vendor app today (IST day), every process together", labels=labels),
            GaugeMetricFamily("tickchart_rest_requests_day_limit", "The vendor app's daily REST request limit",
                              labels=labels),
            GaugeMetricFamily("tickchart_symbol_slots_held",
                              "Symbol slots of the API key held by every feed process together", labels=labels),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from market.budget import shared_store
        from market.conf import fyers_conf

        used, limit, held = self._families()
        conf = fyers_conf()
        if conf.client_id:
            labels = ["fyers", conf.client_id]
            limit.add_metric(labels, conf.rate_per_day)
            try:
                store = shared_store(conf.budget_store)
                used.add_metric(labels, store.used_today(conf.client_id))
                held.add_metric(labels, store.held(conf.client_id))
            except Exception:  # noqa: BLE001 - the store is away: leave the samples out, never fail a scrape
                pass
        yield from (used, limit, held)


REGISTRY.register(BudgetCollector())


class LoopCollector(Collector):
    """Tasks alive on the process's event loop, counted at scrape time: a leak of tasks
    (one left behind per socket or per reconnect) shows as a line that keeps rising
    (bench/soak.py plots it)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("tickchart_event_loop_tasks", "Tasks not yet done on this process's event loop")
        loop = self.loop
        if loop is not None and not loop.is_closed():
            family.add_metric([], len(asyncio.all_tasks(loop)))
        yield family


LOOP_TASKS = LoopCollector()
REGISTRY.register(LOOP_TASKS)


def watch_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Count ``loop``'s tasks in this process's metrics (the first loop to run the app)."""
    if LOOP_TASKS.loop is None or LOOP_TASKS.loop.is_closed():
        LOOP_TASKS.loop = loop


def _counter(name: str, doc: str, source: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["source"])
    family.add_metric([source], value)
    return family


def _gauge(name: str, doc: str, source: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["source"])
    family.add_metric([source], value)
    return family


def serve_pipeline_metrics(pipeline: "Pipeline", port: int, host: str = "127.0.0.1") -> None:
    from prometheus_client import start_http_server

    REGISTRY.register(PipelineCollector(pipeline))
    start_http_server(port, addr=host)

"""``manage.py runfeed``: run a feed into the database and the channel layer.

With ``--serve`` the same process also serves the site through daphne (the embedded
default: one command, SQLite and the in-process layer). Without it, run daphne workers
separately (production).
"""

from __future__ import annotations

# daphne installs Twisted's asyncio reactor on import; it must come before Twisted.
import daphne.server  # noqa: F401  isort:skip

import asyncio
import logging
import signal
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from market import services
from market.conf import market
from market.feed.registry import FEEDS
from market.core.shards import Shard
from market.feed.locks import WriterLockBusy
from market.feed.runner import run_feed

logger = logging.getLogger("market.feed")
# Connections the kernel queues before daphne accepts them (Twisted's default is 50): a
# reconnect storm (issue 17) otherwise sees refused and timed-out handshakes. As the Procfile
# and deploy/systemd (daphne has no flag for it; its endpoint string takes it).
LISTEN_BACKLOG = 4096

# Largest message a browser may send before daphne closes it (1009) without buffering more:
# client messages are small JSON (the consumer answers above MARKET WS_MAX_FRAME_BYTES).
# It caps received messages only (tickchart.inbound_cap): snapshots may be larger.
WS_MAX_MESSAGE_BYTES = 64 * 1024


class Command(BaseCommand):
    help = "Run a market feed: ticks -> candles -> database -> browsers."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--source", choices=sorted(FEEDS), help="feed (default: MARKET FEED setting)")
        parser.add_argument("--file", help="replay: JSON Lines file (plain or .gz)")
        parser.add_argument("--speed", type=float, default=0.0, help="replay: 0 = as fast as possible, 1 = real time")
        parser.add_argument("--serve", action="store_true", help="also serve the site (daphne) in this process")
        parser.add_argument("--host", default="127.0.0.1", help="--serve: interface (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="--serve: port (default 8000)")
        parser.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
        parser.add_argument("--metrics-port", type=int, default=None,
                            help="serve this process's Prometheus metrics on 127.0.0.1:PORT")
        parser.add_argument("--shard", help="K/N: write only this process's share of the symbols")
        parser.add_argument("--record", metavar="DIR",
                            help="fyers: also write every raw message to DIR (gzip JSON Lines, one file a day)")
        parser.add_argument("--standby", action="store_true",
                            help="if another runfeed writes this source, wait and take over when it exits")

    def handle(self, *args, **opts) -> None:
        source = opts["source"] or market().feed
        options = {}
        if source == "replay":
            if not opts["file"]:
                raise CommandError("--source replay needs --file")
            options = {"file": opts["file"], "speed": opts["speed"]}
        if opts.get("record"):
            if source != "fyers":
                raise CommandError("--record needs --source fyers (the raw broker messages)")
            options["record"] = opts["record"]
        options["standby"] = opts["standby"]
        options["metrics_port"] = opts["metrics_port"]
        if opts["shard"]:
            try:
                options["shard"] = Shard.parse(opts["shard"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        if not opts["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        # PostgreSQL: today's candle partitions and the next days' (the writer makes any other).
        services.candle_partition_ensure_ahead(now=time.time())
        if opts["serve"]:
            self._serve(source, options, opts["host"], opts["port"])
        else:
            pipeline = asyncio.run(self._run_until_signal(source, options))
            if pipeline.spilled:
                raise CommandError("candles could not be written; the tick journal replays them on the next start")
            if pipeline.pending:
                raise CommandError(f"{pipeline.pending} candles could not be written")

    async def _run_until_signal(self, source: str, options: dict):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await run_feed(source, stop, **options)
        except (FileNotFoundError, WriterLockBusy) as exc:
            raise CommandError(str(exc)) from None

    def _serve(self, source: str, options: dict, host: str, port: int) -> None:
        from channels.routing import get_default_application
        from daphne.endpoints import build_endpoint_description_strings
        from twisted.internet import defer, reactor

        stop = asyncio.Event()
        tasks: list[asyncio.Task] = []

        def start_feed() -> None:
            from market.pulse.service import run_pulse

            # The feed, and Market Pulse computed from its candles, on the same loop.
            for coro in (run_feed(source, stop, **options), run_pulse(stop)):
                task = asyncio.ensure_future(coro)
                task.add_done_callback(_task_done)
                tasks.append(task)

        def _task_done(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None:
                logger.error("background task stopped with an error: %r", task.exception())

        def stop_feed():
            stop.set()
            running = [t for t in tasks if not t.done()]
            if running:
                return defer.Deferred.fromFuture(asyncio.ensure_future(asyncio.wait(running)))
            return None

        server = daphne.server.Server(
            application=get_default_application(),
            endpoints=[f"{e}:backlog={LISTEN_BACKLOG}" if e.startswith("tcp:") else e
                       for e in build_endpoint_description_strings(host=host, port=port)],
            signal_handlers=True,
            # as deploy/systemd/tickchart-daphne@.service: daphne's own default is 1 MiB
            websocket_max_message_size=WS_MAX_MESSAGE_BYTES,
            websocket_max_frame_size=WS_MAX_MESSAGE_BYTES,
            ready_callable=lambda: reactor.callWhenRunning(start_feed),
        )
        reactor.addSystemEventTrigger("before", "shutdown", stop_feed)
        self.stdout.write(f"TickChart on http://{host}:{port}/ (feed: {source}); Ctrl-C to stop")
        server.run()

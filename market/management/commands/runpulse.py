"""``manage.py runpulse``: the Market Pulse service (market.pulse.service.run_pulse).

Run it beside ``runfeed`` over Redis (REDIS_URL): it listens to the published 1m candles
and publishes pulse frames for /pulse/. In embedded mode (no REDIS_URL) the in-process
layer only reaches one process, so start ``run_pulse`` inside ``runfeed --serve`` instead.
"""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from market.pulse.service import run_pulse


class Command(BaseCommand):
    help = "Compute the Market Pulse from the live candle stream and publish it to /pulse/."

    def handle(self, *args, **opts) -> None:
        if not getattr(settings, "REDIS_URL", None):
            self.stderr.write("warning: no REDIS_URL: this process only sees candles published in it; "
                              "in embedded mode the pulse runs inside `runfeed --serve`")
        asyncio.run(self._run())

    async def _run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_pulse(stop)

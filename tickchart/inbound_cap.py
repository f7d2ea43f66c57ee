"""daphne's ``--websocket-max-message-size`` caps what browsers send, not what we send.

daphne hands the flag to autobahn as ``maxMessagePayloadSize``, and autobahn applies that
one attribute both ways: to a message it receives (``processData``: over it, the
connection fails with 1009 before more is buffered, which is the point of the flag) and
to one it is asked to send (``sendMessage`` raises ``PayloadExceededError``). With the
documented 64 KiB a snapshot of 1,000 5 s candles (about 100 kB) could never be sent: the
subscribe got "server error" each time. ``--websocket-max-frame-size`` is only checked on
receipt.

``InboundCapProtocol`` lifts the cap for the duration of its own ``sendMessage`` (a
reactor-thread call that receives nothing meanwhile), so received messages stay capped
and snapshots go out whole, in one frame. ``install()`` makes daphne's factory build it;
the application module calls it on import, before daphne accepts a connection.
"""

from __future__ import annotations

from typing import Any

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol


class InboundCapProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol with ``maxMessagePayloadSize`` applied to received messages only."""

    def sendMessage(self, payload: bytes, *args: Any, **kwargs: Any) -> None:  # noqa: N802 - autobahn's name
        cap = self.maxMessagePayloadSize
        self.maxMessagePayloadSize = 0  # autobahn: 0 means no limit
        try:
            super().sendMessage(payload, *args, **kwargs)
        finally:
            self.maxMessagePayloadSize = cap


def install() -> None:
    """daphne's factory (CLI and ``runfeed --serve`` alike) builds ``InboundCapProtocol``."""
    WebSocketFactory.protocol = InboundCapProtocol

"""Write WebSocket frames to the socket at once instead of on the reactor's next turn.

Twisted's ``FileDescriptor.write`` only buffers: it registers the socket for writability
(an ``epoll_ctl``) and sends on a later loop iteration, then unregisters it (another
``epoll_ctl``). daphne relays each candle as its own frame, so under fan-out that dance
was about a third of a daphne process's CPU (py-spy, 1000 clients, bench/fanout.py).

``EagerServer`` sends straight away when nothing is buffered, as asyncio's transports
do, and hands whatever the kernel did not take (and everything while a backlog exists)
to Twisted's buffered path, so ordering, back-pressure and connection-loss handling are
Twisted's own. TLS connections keep the plain path (daphne behind a TLS-terminating
proxy is the documented deployment). ``TICKCHART_EAGER_WRITES=0`` turns it off.
"""

from __future__ import annotations

from twisted.internet import tcp


class EagerServer(tcp.Server):
    """An accepted TCP connection that tries ``send()`` before buffering."""

    def write(self, data: bytes) -> None:  # type: ignore[override]
        if (type(data) is bytes and data and not self.TLS and self.connected and not self.disconnecting
                and not self._writeDisconnected and not self._tempDataBuffer
                and self.offset == len(self.dataBuffer)):
            try:
                sent = self.socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # the buffered path's doWrite sees the error and loses the connection
            if sent == len(data):
                return
            data = data[sent:]
        super().write(data)


def install(enabled: bool = True) -> bool:
    """Make TCP listeners (daphne's ``-b``/``-p``) accept ``EagerServer`` connections."""
    tcp.Port.transport = EagerServer if enabled else tcp.Server
    return enabled

"""A browser's WebSocket in tests: channels' WebsocketCommunicator on the real ASGI app."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from channels.testing import WebsocketCommunicator

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
TIMEOUT = 5  # seconds for a frame that must arrive (threads, Redis, PostgreSQL)


@asynccontextmanager
async def ws(path: str = "/ws/market/", *, timeout: float = TIMEOUT) -> AsyncIterator[WebsocketCommunicator]:
    """A connected client, disconnected on exit (imported late: settings may be overridden)."""
    from tickchart.asgi import application

    comm = WebsocketCommunicator(application, path, headers=HEADERS)
    connected, _ = await comm.connect(timeout=timeout)
    assert connected
    try:
        yield comm
    finally:
        await comm.disconnect(timeout=timeout)

"""A browser's WebSocket in tests: channels' WebsocketCommunicator on the real ASGI app."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

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


async def quiet(comm: WebsocketCommunicator, seconds: float = 0.5) -> list[dict[str, Any]]:
    """Frames other than status frames that arrive within ``seconds``."""
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await comm.receive_nothing(timeout=left):
            break
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        if frame["type"] != "status":
            out.append(frame)
    return out

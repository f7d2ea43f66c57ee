"""A loopback WebSocket server speaking Finnhub's trade protocol, for the feed's tests.

It checks the ``token`` query parameter at the handshake (401 when wrong, like Finnhub),
keeps each connection's subscriptions from real ``subscribe``/``unsubscribe`` frames,
answers more than ``limit`` subscriptions with Finnhub's error frame, and runs one
scripted behaviour per connection (send trades, pings, errors, drop the TCP connection).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

# The fake server plays Finnhub: its own logs (which show the token it received) are not ours.
_server_log = logging.getLogger("tests.fakefinnhub")
_server_log.propagate = False
_server_log.addFilter(lambda record: False)

Script = Callable[["Conn"], Awaitable[None]]


@dataclass
class Conn:
    ws: ServerConnection
    server: "FakeFinnhub"
    opened: float = field(default_factory=time.monotonic)
    subscribed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    subscription_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_subscribed(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.subscribed) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.subscribed)} subscriptions, wanted {n}")
            self.subscription_event.clear()
            try:
                await asyncio.wait_for(self.subscription_event.wait(), timeout=0.2)
            except asyncio.TimeoutError:
                pass

    async def send(self, payload: Any) -> None:
        await self.ws.send(payload if isinstance(payload, str) else json.dumps(payload))

    async def trades(self, *rows: tuple[str, float, int, float] | dict) -> None:
        data = [r if isinstance(r, dict) else {"s": r[0], "p": r[1], "t": r[2], "v": r[3], "c": None} for r in rows]
        await self.send({"type": "trade", "data": data})

    def drop(self) -> None:
        """Cut the TCP connection without a closing handshake."""
        self.ws.transport.abort()


class FakeFinnhub:
    def __init__(self, key: str, scripts: list[Script] | None = None, *, limit: int = 50,
                 refuse: list[int] | None = None) -> None:
        self.key = key
        self.scripts = list(scripts or [])
        self.limit = limit
        self.refuse = list(refuse or [])  # HTTP statuses for the next handshakes
        self.conns: list[Conn] = []
        self.attempts: list[float] = []   # monotonic time of every handshake attempt
        self.tokens_seen: list[str] = []
        self.errors_sent: list[str] = []
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> "FakeFinnhub":
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._process_request,
                                   logger=_server_log)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Any):
        self.attempts.append(time.monotonic())
        token = parse_qs(urlparse(request.path).query).get("token", [""])[0]
        self.tokens_seen.append(token)
        if self.refuse:
            status = self.refuse.pop(0)
            return connection.respond(HTTPStatus(status), "refused\n")
        if token != self.key:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")
        return None

    async def _reader(self, conn: Conn) -> None:
        async for raw in conn.ws:
            msg = json.loads(raw)
            if msg.get("type") == "subscribe":
                if len(set(conn.subscribed)) >= self.limit and msg["symbol"] not in conn.subscribed:
                    text = "Subscribing to too many symbols"
                    self.errors_sent.append(text)
                    await conn.send({"type": "error", "msg": text})
                    continue
                conn.subscribed.append(msg["symbol"])
            elif msg.get("type") == "unsubscribe":
                conn.unsubscribed.append(msg["symbol"])
                if msg["symbol"] in conn.subscribed:
                    conn.subscribed.remove(msg["symbol"])
            conn.subscription_event.set()

    async def _handler(self, ws: ServerConnection) -> None:
        conn = Conn(ws=ws, server=self)
        self.conns.append(conn)
        reader = asyncio.create_task(self._reader(conn))
        script = self.scripts.pop(0) if self.scripts else None
        try:
            if script is not None:
                await script(conn)
            await reader
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

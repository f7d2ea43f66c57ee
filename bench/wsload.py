"""A WebSocket load client cheap enough not to be the bottleneck of a fan-out benchmark.

A client of the ``websockets`` library costs a task wake-up, a ``recv()`` future and a
frame object per message: at 10,000 messages/s on a 2-core machine that is most of the
core daphne needs, so the benchmark would measure its own clients. This one is an
``asyncio.Protocol`` that parses every frame of a read in one loop (server frames are
unmasked; RFC 6455 §5.2), stamps them with one clock reading and answers flow-control
``sync``/``behind`` frames with an ``ack`` as the browser does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from typing import Callable

import orjson

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def client_frame(text: str) -> bytes:
    """A masked text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class LoadClient(asyncio.Protocol):
    """Subscribes to one stream; records publish-to-receipt delay of each candle frame."""

    def __init__(self, host: str, port: int, origin: str, subscribe: dict, latencies: list[float],
                 ready: asyncio.Event, closed: Callable[[], None]) -> None:
        self.host, self.port, self.origin = host, port, origin
        self.subscribe = subscribe
        self.latencies = latencies
        self.ready = ready
        self.closed = closed
        self.key = base64.b64encode(os.urandom(16))
        self.buf = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.frames = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(
            b"GET /ws/market/ HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n"
            % (self.host.encode(), self.port, self.key, self.origin.encode()))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            head, buf = buf[:end], buf[end + 4:]
            accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())
            if not head.startswith(b"HTTP/1.1 101") or accept not in head:
                self.transport.close()  # type: ignore[union-attr]  # counted by connection_lost
                return
            self.upgraded = True
            self.transport.write(client_frame(orjson.dumps(self.subscribe).decode()))  # type: ignore[union-attr]
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, start = b1 & 0x7F, pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length, start = struct.unpack_from("!H", buf, pos + 2)[0], pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, start = struct.unpack_from("!Q", buf, pos + 2)[0], pos + 10
            if n < start + length:
                break
            self.frame(b0 & 0x0F, buf[start:start + length], now)
            pos = start + length
        self.buf = buf[pos:]

    def frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 1:
            self.frames += 1
            msg = orjson.loads(payload)
            kind = msg["type"]
            if kind == "candle":
                sent = msg.get("sent")
                if sent is not None and self.ready.is_set():
                    self.latencies.append(now - sent)
            elif kind == "snapshot":
                self.ready.set()
            elif kind in ("sync", "behind"):
                self.transport.write(client_frame('{"type":"ack","seq":%d}' % msg["seq"]))  # type: ignore[union-attr]
        elif opcode == 9:  # ping -> pong
            self.transport.write(b"\x8a\x80\x00\x00\x00\x00")  # type: ignore[union-attr]
        elif opcode == 8:
            self.transport.close()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        """Before the snapshot, a failed client (refused, timed out); after it, a dropped one."""
        self.closed()


async def connect(host: str, port: int, subscribe: dict, latencies: list[float], ready: asyncio.Event,
                  closed: Callable[[], None]) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(
        lambda: LoadClient(host, port, f"http://{host}:{port}", subscribe, latencies, ready, closed), host, port)
    return transport

"""Loopback servers that speak Fyers' protocols, for tests (never a real broker).

* ``FyersHTTP``: REST on 127.0.0.1 — ``/data/history``, ``/data/symbol-token`` (what the
  SDK's subscribe calls), the index mapping, ``validate-authcode``, the TOTP login steps
  and symbol master files. Programmable per test; records every request and its arrival
  time, and like Fyers can enforce rate limits (``limits``: over one, 429 and a breach).
* ``FyersWS``: a WebSocket server speaking the data socket's binary protocol (auth,
  full mode, subscribe/unsubscribe answers, custom message 51, data frames built with
  ``tests.vendors.fyers.frames``) so the real SDK decodes real frames.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

import websockets

from tests.vendors.fyers import frames as ff


class FyersHTTP:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
        self.tokens: dict[str, str] = {}          # ticker -> fytoken
        self.history: Callable[[dict[str, str]], tuple[int, Any]] = lambda q: (200, {"s": "no_data", "candles": []})
        self.routes: dict[tuple[str, str], Callable[[dict[str, Any], dict[str, str]], tuple[int, Any]]] = {}
        self.files: dict[str, bytes] = {}
        self.arrivals: list[float] = []            # monotonic arrival time of every counted request
        self.limits: list[tuple[int, float]] = []  # (requests, window seconds) enforced like Fyers
        self.breaches = 0                          # requests answered 429 for breaking a limit
        self._count_lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.requests.append(("GET", url.path, query, dict(self.headers)))
                if url.path.startswith("/data/") and outer._over_limit():
                    return self._answer(429, {"s": "error", "code": 429, "message": "request limit reached"})
                if url.path == "/data/history":
                    status, body = outer.history(query)
                    headers = {"Retry-After": "1"} if status == 429 else None
                    return self._answer(status, body, headers)
                if url.path == "/sym_details/index_hsm_mapping.json":
                    return self._answer(200, {})
                if url.path in outer.files:
                    return self._answer(200, outer.files[url.path])
                route = outer.routes.get(("GET", url.path))
                if route:
                    return self._answer(*route(query, dict(self.headers)))
                self._answer(404, {"s": "error", "message": "not found"})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(("POST", url.path, body, dict(self.headers)))
                if url.path.startswith("/data/") and outer._over_limit():
                    return self._answer(429, {"s": "error", "code": 429, "message": "request limit reached"})
                if url.path == "/data/symbol-token":
                    valid = {s: outer.tokens[s] for s in body["symbols"] if s in outer.tokens}
                    invalid = [s for s in body["symbols"] if s not in outer.tokens]
                    return self._answer(200, {"s": "ok", "validSymbol": valid, "invalidSymbol": invalid})
                route = outer.routes.get(("POST", url.path))
                if route:
                    return self._answer(*route(body, dict(self.headers)))
                self._answer(404, {"s": "error", "message": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FyersHTTP":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _over_limit(self) -> bool:
        """Count an API request (``/data/*``, as Fyers counts them); True if it breaks a limit."""
        with self._count_lock:
            now = time.monotonic()
            self.arrivals.append(now)
            for count, window in self.limits:
                if sum(1 for t in self.arrivals if t > now - window) > count:
                    self.breaches += 1
                    return True
            return False

    def most_in(self, window: float) -> int:
        """The most counted requests that arrived within any ``window`` seconds (sliding)."""
        times = sorted(self.arrivals)
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] <= t - window:
                j += 1
            best = max(best, i - j + 1)
        return best

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, *_ in self.requests if method is None or m == method]


def _field_frame(resp_type: int, fields: list[tuple[int, bytes]]) -> bytes:
    body = bytes([resp_type, len(fields)])
    for fid, value in fields:
        body += bytes([fid]) + struct.pack("!H", len(value)) + value
    return struct.pack("!H", len(body)) + body


def auth_answer(ok: bool = True) -> bytes:
    # __auth_resp: field 1 = "K" on success, field 2 = ack count (0: no acks)
    return _field_frame(1, [(1, b"K" if ok else b"N"), (2, struct.pack(">I", 0))])


def mode_answer() -> bytes:
    return _field_frame(12, [(1, b"K")])


def sub_answer(resp_type: int = 4) -> bytes:
    # __subscribe_resp reads the length with native "H" at offset 5 and the string at 7
    return struct.pack("!H", 0) + bytes([resp_type, 1, 1]) + struct.pack("H", 1) + b"K"


def custom_message(code: int, message: str, ref_type: int = 4) -> bytes:
    return _field_frame(51, [(1, struct.pack("!i", code)), (2, message.encode()), (3, bytes([ref_type]))])


def parse_topics(frame: bytes) -> list[str]:
    """Topics of a subscribe (4) or unsubscribe (5) request."""
    offset = 4 + 1 + 2  # header, field id, field length
    count = struct.unpack(">H", frame[offset:offset + 2])[0]
    offset += 2
    topics = []
    for _ in range(count):
        n = frame[offset]
        topics.append(frame[offset + 1:offset + 1 + n].decode())
        offset += 1 + n
    return topics


class FyersWS:
    """The data socket server, on its own thread and event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.connections: list[Any] = []
        self.connects = 0
        self.auth_ok = True
        self.subscribed: list[list[str]] = []     # topics per subscribe request
        self.unsubscribed: list[list[str]] = []
        self.on_subscribe: Callable[[list[str]], list[bytes]] = lambda topics: []
        self.topic_ids: dict[str, int] = {}
        self.log: list[int] = []                  # request types received, in order (1 auth, 4 sub, ...)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self._server = await websockets.serve(self._handle, "127.0.0.1", 0, max_size=None)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._server.wait_closed()

        try:
            self.loop.run_until_complete(main())
        except Exception:  # noqa: BLE001
            pass

    def start(self) -> "FyersWS":
        self._thread.start()
        self._ready.wait(5)
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handle(self, ws: Any) -> None:
        self.connects += 1
        self.connections.append(ws)
        try:
            async for frame in ws:
                if not isinstance(frame, bytes) or len(frame) < 3:
                    continue
                kind = frame[2]
                if kind != 11:  # pings
                    self.log.append(kind)
                if kind == 1:
                    await ws.send(auth_answer(self.auth_ok))
                elif kind == 12:
                    await ws.send(mode_answer())
                elif kind == 4:
                    topics = parse_topics(frame)
                    await ws.send(sub_answer(4))
                    for out in self.on_subscribe(topics):
                        await ws.send(out)
                    # Counted once answered: a test that sees the subscribe may trade on its topics.
                    self.subscribed.append(topics)
                elif kind == 5:
                    self.unsubscribed.append(parse_topics(frame))
                    await ws.send(sub_answer(5))
        except websockets.ConnectionClosed:
            pass
        finally:
            if ws in self.connections:
                self.connections.remove(ws)

    def send(self, frame: bytes) -> None:
        async def go() -> None:
            for ws in list(self.connections):
                try:
                    await ws.send(frame)
                except websockets.ConnectionClosed:
                    pass
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)

    def drop(self) -> None:
        """Close every connection abruptly (as a network drop would, from the server side)."""
        async def go() -> None:
            for ws in list(self.connections):
                ws.transport.abort()
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def stop(self) -> None:
        async def go() -> None:
            self._server.close()
            for ws in list(self.connections):
                ws.transport.abort()
        try:
            asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)
        except Exception:  # noqa: BLE001
            pass
        self._thread.join(5)


def topic_for(fytoken: str, index: bool = False) -> str:
    seg = {"1010": "nse_cm", "1210": "bse_cm"}[fytoken[:4]]
    return f"{'if' if index else 'sf'}|{seg}|{fytoken[10:]}"


def equity_frame(topic_id: int, topic: str, *, ltp: float, volume: int, t: int, snapshot: bool,
                 message_number: int = 1, precision: int = 2) -> bytes:
    values = {"ltp": round(ltp * 10 ** precision), "vol_traded_today": volume, "last_traded_time": t,
              "exch_feed_time": t, "bid_price": round((ltp - 0.05) * 10 ** precision),
              "ask_price": round((ltp + 0.05) * 10 ** precision), "bid_size": 10, "ask_size": 10,
              "open_price": round(ltp * 10 ** precision), "prev_close_price": round(ltp * 10 ** precision),
              "low_price": round(ltp * 10 ** precision), "high_price": round(ltp * 10 ** precision)}
    scrip = ff.snapshot(topic_id, topic, values, precision=precision) if snapshot else ff.update(topic_id, topic, values)
    return ff.frame(scrip, message_number=message_number)


def fake_jwt(exp: float, **claims: Any) -> str:
    import base64

    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'exp': int(exp), 'hsm_key': 'hsmkey123', **claims})}.c2ln"

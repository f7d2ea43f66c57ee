"""tickchart.eager_writes: frames go to the socket at once, and a full socket falls back to
Twisted's buffer without reordering or losing a byte. Real loopback TCP sockets; the
reactor is a recorder of what the connection asks of it (the part a reactor does here)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from twisted.internet import tcp
from twisted.internet.protocol import Protocol

from tickchart.eager_writes import EagerServer, install


class RecordingReactor:
    def __init__(self) -> None:
        self.writers: set = set()
        self.added = 0

    def addReader(self, r) -> None:  # noqa: N802 - Twisted's interface
        pass

    def removeReader(self, r) -> None:  # noqa: N802
        pass

    def addWriter(self, w) -> None:  # noqa: N802
        self.added += 1
        self.writers.add(w)

    def removeWriter(self, w) -> None:  # noqa: N802
        self.writers.discard(w)


def pair(cls):
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, addr = listener.accept()
    listener.close()
    server.setblocking(False)
    reactor = RecordingReactor()
    conn = cls(server, Protocol(), addr, None, 1, reactor)
    return conn, client, reactor


def read_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    sock.settimeout(5)
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "peer closed early"
        out += chunk
    return bytes(out)


def test_a_write_reaches_the_peer_without_a_reactor_turn():
    conn, client, reactor = pair(EagerServer)
    conn.write(b"hello")
    assert read_exactly(client, 5) == b"hello"
    assert reactor.added == 0, "no writability registration for a frame the kernel took"


def test_the_plain_server_waits_for_the_reactor_which_is_what_this_avoids():
    conn, client, reactor = pair(tcp.Server)
    conn.write(b"hello")
    client.setblocking(False)
    try:
        got = client.recv(5)
    except BlockingIOError:
        got = b""
    assert got == b"" and reactor.added == 1
    conn.doWrite()
    assert read_exactly(client, 5) == b"hello"


def test_a_full_socket_buffers_the_rest_in_order_and_drains_through_the_reactor():
    conn, client, reactor = pair(EagerServer)
    chunks = [os.urandom(64 * 1024) for _ in range(64)]  # 4 MiB: far beyond the socket buffers
    for c in chunks:
        conn.write(c)
    assert reactor.writers == {conn}, "what the kernel refused waits for writability"
    expected = b"".join(chunks)
    got = bytearray()
    client.settimeout(5)
    while len(got) < len(expected):
        if conn in reactor.writers:
            conn.doWrite()
        try:
            got += client.recv(1 << 20)
        except socket.timeout:
            raise AssertionError(f"stalled at {len(got)} of {len(expected)} bytes") from None
    assert bytes(got) == expected
    conn.doWrite()  # drained: Twisted unregisters it
    assert conn not in reactor.writers
    conn.write(b"after")  # an empty buffer again: straight out
    assert read_exactly(client, 5) == b"after"


def test_writes_after_the_peer_is_gone_do_not_raise():
    conn, client, reactor = pair(EagerServer)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()  # RST
    for _ in range(3):
        conn.write(b"x" * 1000)  # ECONNRESET/EPIPE: handed to Twisted's buffered path
    assert conn in reactor.writers
    assert isinstance(conn.doWrite(), Exception), "doWrite reports the loss, as without eager writes"


def test_install_follows_the_setting():
    try:
        assert install(False) is False and tcp.Port.transport is tcp.Server
        assert install(True) is True and tcp.Port.transport is EagerServer
    finally:
        tcp.Port.transport = tcp.Server


def test_daphne_serves_with_eager_writes_unless_turned_off():
    """What daphne's process gets from importing the application."""
    code = ("import daphne.server, tickchart.asgi\n"
            "from twisted.internet import tcp\n"
            "print(tcp.Port.transport.__name__)")
    for value, expected in (("1", "EagerServer"), ("0", "Server")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "TICKCHART_EAGER_WRITES": value})
        assert out.stdout.strip().splitlines()[-1] == expected
